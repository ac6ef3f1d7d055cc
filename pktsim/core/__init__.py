"""The bottom layer: the vocabulary every other layer shares, importing nothing of pktsim.

* ``frame``: what travels between devices (``Frame``) and what a device returns about it
  (``Reaction`` with ``Emit``\\ s and ``Step``\\ s, ``DropReason``), and the ``Device`` protocol
  the driver drives;
* ``events``: the trace vocabulary — ``Event`` (what a step is), the typed details that go
  with it (``NatRewrite``, ``RuleHit``, ``Route``, ``FdbLookup``, ...), and ``TraceEvent``,
  one line of ``trace.jsonl``;
* ``capture``: capture points (``Interface``, ``LinkType``, ``Direction``) and the ``Sink``
  protocol that capture files and the trace writers implement;
* ``seeding``: the named random streams' seeds;
* ``lazy``: a package's names, each imported from its module on first use.

Devices and the driver both build on this layer; neither imports the other's vocabulary
(docs/architecture.md lists what each layer may import; a test checks it).
"""
