"""The NetworkPolicy benchmark (benchmarks/README.md §5): the per-packet cost of felix's
filter decision with 10 and with 1,000 policies in the cluster, side by side in one run.

A ``network: calico`` cluster (IPIP, 2 nodes) has a client pod ``default/a`` on node-1
(``role: client``), a server ``default/b`` on node-2 (``app: b``, port 8080) and, for ``n``
policies, ``n - 1`` other pods on node-2 each selected by its own policy (``app: svc-I``,
allowing ``role: client`` on 8080), plus the one that selects ``b``.  So node-2 has ``n``
workloads, ``n`` active policies, their IP sets and a dispatch tree of ``n`` interfaces,
as felix programs them.  The figure is the median time of ``evaluate`` of node-2's filter
``FORWARD`` for the NEW SYN from ``a`` to ``b`` (in ``tunl0``, out ``b``'s cali veth), which
walks the dispatch tree, ``b``'s chain and its policy, whose peer is an IP set lookup.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.common import Outcome, median

NAME = "policy"
TARGET = 2.0  # cost at 1,000 policies / at 10


@dataclass(frozen=True)
class PolicyConfig:
    sizes: tuple[int, int] = (10, 1_000)
    repeats: int = 2_000

    @classmethod
    def quick(cls) -> PolicyConfig:
        return cls(sizes=(5, 50), repeats=200)


def configure(quick: bool, repeats: int | None = None) -> PolicyConfig:
    cfg = PolicyConfig.quick() if quick else PolicyConfig()
    return PolicyConfig(cfg.sizes, repeats or cfg.repeats)


def scenario(policies: int) -> str:
    """The cluster of the module docstring, as YAML."""
    docs = ["apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {nodes: 2, network: calico, "
            "calico: {blockSize: 20}, podCIDR: 10.128.0.0/12}",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {role: client}}\n"
            "spec: {nodeName: node-1, containers: [{name: c}]}"]
    for i in range(policies):
        app = "b" if i == 0 else f"svc-{i}"
        name = "b" if i == 0 else f"p{i}"
        docs.append(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: "
                    f"{app}}}}}\nspec: {{nodeName: node-2, containers: [{{name: s, ports: "
                    f"[{{containerPort: 8080}}]}}]}}")
        docs.append(f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: "
                    f"{{name: allow-{app}}}\nspec:\n  podSelector: {{matchLabels: {{app: "
                    f"{app}}}}}\n  ingress:\n  - from: [{{podSelector: {{matchLabels: "
                    f"{{role: client}}}}}}]\n    ports: [{{port: 8080}}]")
    return "\n---\n".join(docs) + "\n"


def decision(policies: int, repeats: int) -> dict[str, Any]:
    """Median seconds of node-2's filter FORWARD walk for the NEW SYN a -> b:8080."""
    import pktsim
    from pktsim.netfilter.engine import evaluate
    from pktsim.netfilter.view import Env, PacketView
    from pktsim.wire.build import PROTO_TCP

    cluster = pktsim.load(scenario(policies))
    topo = cluster.build()
    a, b = cluster.model.pods["default/a"], cluster.model.pods["default/b"]
    nf = topo.netfilters["node-2"]
    table = nf.table("filter")
    env = Env(ipsets=nf.ipsets)
    times: list[float] = []
    outcome = None
    for i in range(repeats):
        view = PacketView(a.ip.packed, b.ip.packed, PROTO_TCP, 40000 + i % 20000, 8080,
                          "tunl0", b.veth, ctstate="NEW")
        t = time.perf_counter()
        outcome = evaluate(table, "FORWARD", view, env)
        times.append(time.perf_counter() - t)
    assert outcome is not None
    allowed = outcome.verdict == "ACCEPT" and any(h.chain.startswith("cali-pi-")
                                                  for h in outcome.hits)
    if not allowed:
        raise RuntimeError(f"the SYN was not allowed by b's policy: {outcome.path_text()}")
    return {"policies": len(cluster.model.network_policies), "seconds": median(times),
            "rules": sum(1 for _ in table.rules()), "ipsets": len(nf.ipsets.sets),
            "rules_fired": len(outcome.hits)}


def run(cfg: PolicyConfig) -> Outcome:
    small, large = (decision(n, cfg.repeats) for n in cfg.sizes)
    ratio = large["seconds"] / small["seconds"]
    figures = {"small": small, "large": large, "ratio": ratio, "target": TARGET}
    lines = [f"  {f['policies']:>5} policies: {f['seconds'] * 1e6:7.1f} µs per decision, "
             f"{f['rules']} filter rules, {f['ipsets']} IP sets, {f['rules_fired']} fired"
             for f in (small, large)]
    lines.append(f"policy: {large['policies']} vs {small['policies']} policies: ratio "
                 f"{ratio:.2f}x (target <= {TARGET}x) {'met' if ratio <= TARGET else 'NOT met'}")
    return Outcome(NAME, figures, lines)
