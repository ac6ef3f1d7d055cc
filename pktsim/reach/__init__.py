"""``pktsim reach`` and ``Cluster.reachability``: the NetworkPolicy reachability matrix, as
cyclonus prints it for a live cluster (github.com/mattfenwick/cyclonus), made offline from
probes run as traffic (``probe``) and decided from their trace (``decode``); the cells are
``cells`` (``pktsim.Reachability``, ``pktsim.ReachCell``, ``pktsim.Verdict``).

The package imports nothing itself, so registering the subcommand (``reach.command``) costs
nothing until it runs."""
