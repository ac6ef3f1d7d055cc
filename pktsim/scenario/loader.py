"""Read every document of every file, dispatch on ``kind``, then assemble the Scenario.

Reading is one pass that records problems instead of stopping at the first: at the end, one
problem raises a :class:`ScenarioError`, several raise :class:`ScenarioErrors`.  Workloads are
expanded into pods only after every document is read (the seed, the nodes and the pods a
snapshot already holds may come later in the stream), at the place of the workload in the
stream, which is the pods' creation order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pktsim.core.capture import PCAP_END_NS
from pktsim.errors import SHOWN_ERRORS, ScenarioError, ScenarioErrors
from pktsim.model.bulk import gc_paused
from pktsim.model.cluster import generated_nodes
from pktsim.model.objects import (
    CalicoPool,
    ClusterConfig,
    EndpointSlice,
    Flow,
    Node,
    Pod,
    Scenario,
    Service,
    Source,
)
from pktsim.model.policy import NetworkPolicy
from pktsim.model.timeline import Change
from pktsim.scenario.addons import with_addons
from pktsim.scenario.apifields import Memo, check_fields
from pktsim.scenario.calico import IPPOOL_GROUPS, check_pool, read_pool
from pktsim.scenario.cluster import read_cluster
from pktsim.scenario.events import APPLIED, World, check_changes, read_events
from pktsim.scenario.families import check_families
from pktsim.scenario.fields import Check, Ctx, Obj
from pktsim.scenario.meta import Meta, peek_key, read_meta
from pktsim.scenario.pods import PodMemo, read_node, read_pod
from pktsim.scenario.policies import policy_warnings, read_network_policy
from pktsim.scenario.services import check_node_ports, read_endpoint_slice, read_service
from pktsim.scenario.stream import Document, read_stream
from pktsim.scenario.syntax import dns1035_label, dns_label, dns_subdomain
from pktsim.scenario.traffic import read_traffic
from pktsim.scenario.workloads import WORKLOAD_KINDS, Workload, expand, materialized, read_workload

ALWAYS_NAMESPACES = ("default", "kube-system")
DAY_NS = 24 * 3600 * 10**9
PKTSIM_API = "pktsim/v1alpha1"


@dataclass(slots=True)
class State:
    """What the documents said so far."""

    errors: list[ScenarioError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config: ClusterConfig | None = None
    families_by: str = ""  # the Cluster field that decided the families ("": infer them)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    entries: list[Pod | Workload] = field(default_factory=list)  # in creation order
    services: list[Service] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)
    policies: list[NetworkPolicy] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    flow_numbers: list[int] = field(default_factory=lambda: [0])
    flow_names: dict[str, str] = field(default_factory=dict)  # name -> where first given
    defined: dict[tuple[str, str], Source] = field(default_factory=dict)
    pod_memo: PodMemo = field(default_factory=PodMemo)
    ippools: list[tuple[Obj, CalicoPool]] = field(default_factory=list)  # kind: IPPool
    changes: list[Change] = field(default_factory=list)  # spec.events, in file order
    field_memo: Memo = field(default_factory=dict)  # apifields: pod specs checked once

    def define(self, ctx: Ctx, category: str, key: str) -> bool:
        """Record ``category`` ``key``; False (and an error) when it was defined before."""
        first = self.defined.setdefault((category, key), ctx.source)
        if first is ctx.source:
            return True
        ctx.error("metadata.name", key.rpartition("/")[2], f"is defined twice: first at "
                  f"{first.file}: {first.document()}", f"one {category} per name")
        return False


Reader = Callable[[State, Obj, Meta, Source], None]


@dataclass(frozen=True, slots=True)
class Kind:
    groups: tuple[str, ...]  # API groups the kind is read from ("" is the core group)
    read: Reader
    name_check: Check | None = dns_subdomain
    namespaced: bool = True
    pktsim: bool = False


def _namespace(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    labels = state.namespaces.setdefault(meta.name, {})
    labels.update(meta.labels)


def _node(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    if state.define(doc.ctx, "Node", meta.name):
        state.nodes.append(read_node(doc, meta, source))


def _pod(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    pod = read_pod(doc, meta, source, state.pod_memo)
    if pod is not None and state.define(doc.ctx, "Pod", meta.key):
        state.entries.append(pod)


def _workload(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    kind = str(doc.raw("kind"))  # the object's own (an event's source is its Traffic's)
    work = read_workload(doc, kind, meta, source)
    if state.define(doc.ctx, kind, meta.key):
        state.entries.append(work)


def _service(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    svc = read_service(doc, meta, source)
    if state.define(doc.ctx, "Service", meta.key):
        state.services.append(svc)


def _slice(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    found = read_endpoint_slice(doc, meta, source)
    if found is not None and state.define(doc.ctx, "EndpointSlice", meta.key):
        state.slices.append(found)


def _policy(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    policy = read_network_policy(doc, meta, source)
    if state.define(doc.ctx, "NetworkPolicy", meta.key):
        state.policies.append(policy)


def _cluster(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    if state.config is not None and state.config.source is not None:
        first = state.config.source
        doc.ctx.error("kind", "Cluster", f"is given twice: first at {first.file}: "
                      f"{first.document()}", "at most one Cluster")
        return
    state.config, state.families_by = read_cluster(doc, source)


def _ippool(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    """A Calico ``IPPool``: read now, applied over the Cluster's pool in ``assemble``."""
    if state.define(doc.ctx, "IPPool", meta.name):
        body = doc.mapping("spec")
        if not body.has("cidr"):
            body.missing("cidr", "the pool's CIDR")
        pool = read_pool(body, CalicoPool(name=meta.name), strict=False)
        state.ippools.append((body, pool))


def _traffic(state: State, doc: Obj, meta: Meta, source: Source) -> None:
    for path, flow in read_traffic(doc, source, state.flow_numbers):
        where = f"{source.file}: {source.document()} {path}"
        first = state.flow_names.setdefault(flow.name, where)
        if first != where:
            doc.ctx.error(f"{path}.name", flow.name, f"is already the name of the flow at "
                          f"{first}", "a unique name per flow")
            continue
        state.flows.append(flow)
    state.changes += read_events(doc, source, lambda body: read_applied(state, body))


KINDS: dict[str, Kind] = {
    "Namespace": Kind(("",), _namespace, dns_label, namespaced=False),
    "Node": Kind(("",), _node, namespaced=False),
    "Pod": Kind(("",), _pod),
    **{k: Kind(("apps", "extensions"), _workload) for k in WORKLOAD_KINDS},
    "Service": Kind(("",), _service, dns1035_label),
    "EndpointSlice": Kind(("discovery.k8s.io",), _slice),
    "NetworkPolicy": Kind(("networking.k8s.io", "extensions"), _policy),
    "Cluster": Kind(("pktsim",), _cluster, None, namespaced=False, pktsim=True),
    "Traffic": Kind(("pktsim",), _traffic, None, namespaced=False, pktsim=True),
    "IPPool": Kind(IPPOOL_GROUPS, _ippool, namespaced=False),
}


def read_document(state: State, doc: Document) -> None:
    ctx = Ctx(doc.file, doc.source(), state.errors, state.warnings)
    obj = Obj(ctx, "", doc.body)
    kind_name = obj.string("kind", required=True, valid="an object kind such as Pod")
    api = obj.string("apiVersion", valid="GROUP/VERSION such as apps/v1")
    if not kind_name:
        return
    kind = KINDS.get(kind_name)
    group = api.rpartition("/")[0]
    if kind is None or (api and group not in kind.groups):
        shown = f"{kind_name} ({api})" if kind is not None else kind_name
        ctx.warn(f"kind {shown} skipped (not modelled)", with_kind=False)
        return
    if kind.pktsim and api and api != PKTSIM_API:
        ctx.error("apiVersion", api, "is not supported", PKTSIM_API)
        return
    ctx.source = doc.source(kind_name, peek_key(obj, kind.namespaced))
    read_as(state, obj, kind_name, kind, lambda key: doc.source(kind_name, key))


def read_as(state: State, obj: Obj, kind_name: str, kind: Kind,
            source_of: Callable[[str], Source]) -> Meta | None:
    """Read ``obj`` as a ``kind_name`` into ``state``: what a document of the stream and an
    ``apply`` event share, so an object means the same wherever it is written."""
    meta = read_meta(obj, kind.name_check, namespaced=kind.namespaced,
                     name_required=not kind.pktsim)
    if meta is None:
        return None
    obj.ctx.source = source_of(meta.key)
    if not kind.pktsim:
        check_fields(obj.ctx, kind_name, cast(dict[Any, Any], obj.data), state.field_memo,
                     obj.path)
    if meta.namespace:
        state.namespaces.setdefault(meta.namespace, {})
    kind.read(state, obj, meta, obj.ctx.source)
    return meta


def read_applied(state: State, obj: Obj) -> tuple[str, str, str, object] | None:
    """The object of an ``apply`` event, read into a scratch State (so it neither joins the
    stream's objects nor clashes with the one it replaces); its problems go to ``state``.
    A kind pktsim does not read is an error here, not a warning: skipping it would run a
    timeline the user did not write."""
    kind_name = obj.string("kind", required=True, valid=" | ".join(APPLIED))
    api = obj.string("apiVersion", valid="GROUP/VERSION such as apps/v1")
    if not kind_name:
        return None
    kind = KINDS.get(kind_name)
    if kind is None or kind_name not in APPLIED:
        obj.ctx.error(obj.at("kind"), kind_name, "cannot be applied by an event",
                      " | ".join(APPLIED))
        return None
    if api and api.rpartition("/")[0] not in kind.groups:
        obj.ctx.error(obj.at("apiVersion"), api, f"is not an API version of {kind_name}",
                      " or ".join(f"{g}/v1" if g else "v1" for g in kind.groups))
        return None
    scratch = State(errors=state.errors, warnings=state.warnings, field_memo=state.field_memo)
    source = obj.ctx.source
    meta = read_as(scratch, obj, kind_name, kind, lambda key: source)
    made = [*scratch.nodes, *scratch.entries, *scratch.services, *scratch.slices,
            *scratch.policies]
    if meta is None or not made:
        return None
    for namespace in scratch.namespaces:
        state.namespaces.setdefault(namespace, {})
    return kind_name, meta.namespace, meta.name, made[0]


def _node_names(state: State, config: ClusterConfig) -> list[tuple[str, dict[str, str]]]:
    """Nodes a DaemonSet runs on: the stream's (by name), else ``node-1`` … ``node-N``."""
    if state.nodes:
        return [(n.name, n.labels) for n in sorted(state.nodes, key=lambda n: n.name)]
    return [(n.name, n.labels) for n in generated_nodes(config)]


def expand_pods(state: State, config: ClusterConfig) -> list[Pod]:
    """Explicit pods and the pods of workloads, in creation order."""
    explicit = [e for e in state.entries if isinstance(e, Pod)]
    done = materialized([e for e in state.entries if isinstance(e, Workload)], explicit)
    origin: dict[str, Source | None] = {p.key: p.source for p in explicit}
    taken = set(origin)
    nodes = _node_names(state, config)
    pods: list[Pod] = []
    for entry in state.entries:
        if isinstance(entry, Pod):
            pods.append(entry)
            continue
        if entry.key in done:
            continue
        for pod in expand(entry, config.seed, nodes, taken):
            if pod.key in origin:
                _clash(state, entry, pod, origin[pod.key])
                continue
            origin[pod.key] = pod.source
            taken.add(pod.key)
            pods.append(pod)
    return pods


def _clash(state: State, work: Workload, pod: Pod, first: Source | None) -> None:
    src = work.source or Source()
    where = f"{first.file}: {first.document()}" if first is not None else "another object"
    state.errors.append(ScenarioError(
        f"would create pod {pod.key}, which is already defined at {where}", file=src.file,
        document=src.document(), field="metadata.name", value=work.meta.name,
        valid="a name whose pods do not clash with other pods"))


def _apply_ippools(state: State, config: ClusterConfig) -> None:
    """The stream's IPPool over ``Cluster.spec.calico``: one pool is modelled."""
    for index, (body, pool) in enumerate(state.ippools):
        if index:
            body.ctx.error("metadata.name", pool.name, "is a second IPPool: pktsim models "
                           f"one pool ({state.ippools[0][1].name})", "a single IPPool")
            continue
        config.calico = pool
        check_pool(body, pool, config)
        if config.network != "calico":
            body.ctx.warn(f"IPPool {pool.name} has no effect: the Cluster's network is "
                          f"{config.network}, not calico")


def check_clock(state: State, config: ClusterConfig) -> None:
    """Every capture timestamp of a run (``startTime`` + virtual time, up to a day past the
    last flow's start: the default horizon) must fit classic pcap's unsigned 32-bit
    seconds, 1970 to 2106, or ``check`` would pass what ``run`` cannot write."""
    src = config.source or Source()
    valid = "a time from 1970-01-01T00:00:00Z to 2106-02-06 (pcap's 32-bit seconds)"
    if not 0 <= config.start_time_ns <= PCAP_END_NS - DAY_NS:
        state.errors.append(ScenarioError(
            "is outside what a capture can stamp", file=src.file, document=src.document(),
            field="spec.startTime", value=config.start_time_ns // 10**9, valid=valid))
        return
    late = [(f.start_ns, f.source, f"{f.path}.start", "starts", "start") for f in state.flows]
    late += [(c.at_ns, c.source, f"{c.path}.at", "is", "time") for c in state.changes]
    for at_ns, source, path, verb, what in late:
        if config.start_time_ns + at_ns > PCAP_END_NS - DAY_NS:
            where = source or Source()
            state.errors.append(ScenarioError(
                f"{verb} after the last time a capture can stamp (2106-02-07, pcap's 32-bit "
                "seconds, less a day to run)", file=where.file, document=where.document(),
                field=path, value=at_ns // 10**6,
                valid=f"an earlier {what} (milliseconds shown)"))


def _world(state: State, scenario: Scenario) -> World:
    """What exists when the run starts, for the events' names: the stream's objects, the
    pods of its workloads as ``expand_pods`` named them, and the add-on's (CoreDNS)."""
    objects: dict[str, set[str]] = {"Pod": {p.key for p in scenario.pods}}
    for work in scenario.workloads:
        objects.setdefault(work.kind, set()).add(f"{work.meta.namespace}/{work.meta.name}")
    for kind, found in (("Service", scenario.services),
                        ("EndpointSlice", scenario.endpoint_slices),
                        ("NetworkPolicy", scenario.network_policies)):
        objects[kind] = {f"{o.namespace}/{o.name}" for o in found}
    objects["Node"] = {name for name, _ in _node_names(state, scenario.config)}
    return World(objects, pods={p.key: p for p in scenario.pods})


def assemble(state: State, seed: int | None) -> Scenario:
    config = state.config or ClusterConfig()
    if seed is not None:
        config.seed = seed
    _apply_ippools(state, config)
    check_clock(state, config)
    if config.zones and state.nodes:
        src = config.source or Source()
        state.warnings.append(f"{src.file}: {src.document()}: zones has no effect: the "
                              "stream has Node objects (give each its "
                              "topology.kubernetes.io/zone label)")
    pods = expand_pods(state, config)
    check_families(config, state.families_by, [*state.nodes, *pods, *state.services],
                   [c.obj for c in state.changes if c.obj is not None], state.flows,
                   state.errors, state.warnings)
    check_node_ports(state.services, state.errors)
    for name in ALWAYS_NAMESPACES:
        state.namespaces.setdefault(name, {})
    labels = {ns: {**state.namespaces[ns], "kubernetes.io/metadata.name": ns}
              for ns in sorted(state.namespaces)}
    state.warnings += policy_warnings(state.policies, config.network)
    changes = sorted(state.changes, key=lambda c: c.at_ns)  # stable: file order breaks ties
    return Scenario(config=config, namespaces=sorted(state.namespaces), nodes=state.nodes,
                    pods=pods, services=state.services, endpoint_slices=state.slices,
                    network_policies=state.policies, flows=state.flows,
                    workloads=[e for e in state.entries if isinstance(e, Workload)],
                    warnings=state.warnings, namespace_labels=labels, changes=changes)


def load(inputs: list[tuple[str, str]], seed: int | None = None,
         errors: list[ScenarioError] | None = None, *, addons: bool = True) -> Scenario:
    """Load ``(file name, YAML text)`` inputs; raise every problem found, after one pass.

    The result includes kubeadm's add-ons (``addons``: CoreDNS), so that it describes the
    whole cluster and nothing downstream has to add to it; ``addons=False`` loads only
    what the inputs say (the add-on's own manifest is loaded so)."""
    state = State(errors=list(errors or []))
    with gc_paused():
        for file, text in inputs:
            for doc in read_stream(file, text, state.errors, state.warnings):
                read_document(state, doc)
        scenario = assemble(state, seed)
        if addons and not state.errors:  # the add-on's names count for the events too
            scenario = with_addons(scenario)
        check_changes(scenario.changes, _world(state, scenario), state.errors)
    raise_errors(state.errors)
    scenario.warnings = capped(scenario.warnings)
    return scenario


def capped(warnings: list[str]) -> list[str]:
    """The first ``SHOWN_ERRORS`` warnings and a count of the rest, as for errors."""
    if len(warnings) <= SHOWN_ERRORS:
        return warnings
    rest = len(warnings) - SHOWN_ERRORS
    return [*warnings[:SHOWN_ERRORS], f"... and {rest:,} more warnings (the first "
            f"{SHOWN_ERRORS} are shown)"]


def raise_errors(errors: list[ScenarioError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ScenarioErrors(errors)
