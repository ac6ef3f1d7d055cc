"""The node agents that rewrite a node's rules when the cluster changes: kube-proxy and felix.

Theory of operation
-------------------
kube-proxy does not rewrite its rules at each change: its sync runner
(``BoundedFrequencyRunner``, kubernetes pkg/proxy/runner/bounded_frequency_runner.go
``Run``) runs ``syncProxyRules`` as soon as a change arrives but never sooner than
``minSyncPeriod`` (1 s by default) after the previous run, and one run takes in every change
that arrived meanwhile.  Until it runs, the node's rules are the old ones: a new connection
may still be DNATed to an endpoint that is gone.  Every node's kube-proxy ran its first sync
at the start of the run.  felix (``network: calico``) applies its dataplane as the
datastore changes, without such a floor: pktsim applies it at once.

A sync replaces the node's tables as ``iptables-restore`` does, in one step between two
packets (``pktsim.build.topology.load_rules``).  Conntrack is left as it is: an established
connection keeps its NAT binding whatever the new rules say (nf_nat binds a connection once,
on its first packet).  After writing the rules, kube-proxy deletes the UDP conntrack entries
that point at endpoints no longer serving (``pktsim.kubeproxy.cleanup`` when present; off
with ``kubeProxy.conntrackCleanup: false``).  The trace gets one ``sync`` event per node and
agent with the rule lines added and removed (a diff of ``iptables-save`` before and after)
and the entries deleted; the node's rule *generation* goes up by one, and every rule walk
from then on names it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pktsim.build.dualstack import load_rules6
from pktsim.build.topology import Topology, count_local_endpoints, load_rules
from pktsim.core.events import Event, RuleSync, TraceEvent
from pktsim.netfilter.conntrack import Conn

if TYPE_CHECKING:
    from pktsim.netfilter import Netfilter

AGENT_TEXT = {"kube-proxy": "kube-proxy iptables-restore", "felix": "felix dataplane",
              "portmap": "portmap CNI plugin"}
# which agent owns a chain, by prefix: how a rule line of the diff is attributed
OWNERS = (("KUBE-", "kube-proxy"), ("cali", "felix"), ("FLANNEL", "flannel"))


class SyncRunner:
    """One node's kube-proxy sync runner: ``request`` a sync; it runs at most once per
    ``min_interval``, taking in every change requested until it runs."""

    def __init__(self, topo: Topology, node: str, min_interval: int,
                 on_sync: Callable[[str, str], None]) -> None:
        self.topo, self.node, self.min_interval = topo, node, min_interval
        self.last_run = 0  # the first sync, at start-up
        self.due: int | None = None
        self.on_sync = on_sync  # (node, agent) -> the plane does the sync

    def request(self, now: int) -> None:
        """A change kube-proxy must write (``Run``): at once, or when the interval is up."""
        if self.due is not None:
            return
        self.due = max(now, self.last_run + self.min_interval)
        self.topo.driver.at(self.due, self._run)

    def _run(self) -> None:
        self.due = None
        self.last_run = self.topo.driver.now
        self.on_sync(self.node, "kube-proxy")


def resync(topo: Topology, node: str, agent: str, generation: int,
           cleanup: Callable[[Netfilter, int], list[Conn]] | None) -> RuleSync:
    """Rewrite ``node``'s rules from the model as it is now; the diff and deleted entries."""
    nf = topo.netfilters[node]
    now = topo.driver.now
    before = nf.save().splitlines()
    sets_before = nf.ipsets.save().splitlines()
    info = topo.model.nodes[node]
    nf6 = topo.netfilters6.get(node)
    before6 = nf6.save().splitlines() if nf6 is not None else []
    if agent == "kube-proxy":
        topo.proxy_written[node] = load_rules(topo, info, nf)
        count_local_endpoints(topo, node)
        load_rules6(topo, info)  # its IPv6 proxier syncs with it
    else:  # felix, portmap: their chains from the model now, kube-proxy's as last written
        load_rules(topo, info, nf, topo.proxy_written[node])
    nf.generation = generation
    after = nf.save().splitlines()
    sets_after = nf.ipsets.save().splitlines()
    added, removed = _diff(before, after)
    set_added, set_removed = _diff(sets_before, sets_after)
    if nf6 is not None:  # ip6tables' lines, named as such
        nf6.generation = generation
        added6, removed6 = _diff(before6, nf6.save().splitlines())
        added += [f"ip6tables: {line}" for line in added6]
        removed += [f"ip6tables: {line}" for line in removed6]
    deleted = cleanup(nf, now) if cleanup is not None else []
    return RuleSync(agent, generation, tuple(added + set_added), tuple(removed + set_removed),
                    tuple(c.render(now).rstrip("\n") for c in deleted))


def _diff(before: list[str], after: list[str]) -> tuple[list[str], list[str]]:
    """The rule lines added and removed (headers, chain lines and counters left out)."""
    added: list[str] = []
    removed: list[str] = []
    for line in difflib.unified_diff(before, after, lineterm="", n=0):
        if line.startswith(("+++", "---", "@@")):
            continue
        body = line[1:]
        if not body.startswith(("-A ", "-I ", "add ", "create ")):
            continue
        (added if line[0] == "+" else removed).append(body)
    return added, removed


def sync_event(topo: Topology, node: str, sync: RuleSync) -> TraceEvent:
    """The trace line of a sync: who, which generation, how many rules changed."""
    changed = f"+{len(sync.added)} -{len(sync.removed)} rules"
    extra = f", {len(sync.deleted)} conntrack entries deleted" if sync.deleted else ""
    first = next(iter(sync.added + sync.removed), "")
    shown = f": {'+' if first in sync.added else '-'}{first}" if first else ": no change"
    more = f" (and {len(sync.added) + len(sync.removed) - 1} more)" \
        if len(sync.added) + len(sync.removed) > 1 else ""
    agent = AGENT_TEXT.get(sync.component, sync.component)
    summary = f"{agent}: rules generation {sync.generation} ({changed}{extra}){shown}{more}"
    return TraceEvent(topo.driver.now, "", None, node, "", Event.SYNC, summary, None, sync)
