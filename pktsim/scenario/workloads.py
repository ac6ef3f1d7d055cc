"""Deployments, ReplicaSets, StatefulSets and DaemonSets, and the pods they become.

Names are deterministic, derived with SHA-256 from the seed (never from a clock or a random
source), in Kubernetes' shapes and alphabet ("bcdfghjklmnpqrstvwxz2456789", no vowels):

- Deployment ``web``: ``web-<hash>-<suffix>``; ``<hash>`` (10 characters, also the pod's
  ``pod-template-hash`` label) from (seed, namespace, name); ``<suffix>`` (5 characters) from
  (seed, namespace, kind, name, replica index).
- ReplicaSet ``rs``: ``rs-<suffix>``.  DaemonSet ``ds``: ``ds-<suffix>`` with the suffix keyed
  by the node name, so adding a node renames no other pod.
- StatefulSet ``db``: ``db-0``, ``db-1`` … (from ``spec.ordinals.start``), hostname = pod
  name, subdomain = ``spec.serviceName``.

When a generated name is taken (by a pod in the stream or an earlier workload), the suffix is
drawn again with an attempt counter, as the API server's ``generateName`` retries do.

A snapshot already holds a workload's pods.  A workload generates none when a pod of the
stream names it (or a ReplicaSet of it) as controller owner, and a ReplicaSet controlled by a
Deployment of the stream leaves its pods to that Deployment.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace

from pktsim.model.objects import Pod, Source
from pktsim.scenario.fields import Obj
from pktsim.scenario.meta import Meta
from pktsim.scenario.pods import PodSpec, make_pod, read_pod_spec
from pktsim.scenario.syntax import dns_label, label_key, label_value

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
MAX_REPLICAS = 150_000  # Kubernetes' documented limit of pods per cluster


@dataclass(frozen=True, slots=True)
class Strategy:
    """A Deployment's ``spec.strategy`` (defaults: pkg/apis/apps/v1/defaults.go
    ``SetDefaults_Deployment``, RollingUpdate with 25% / 25%)."""

    type: str = "RollingUpdate"
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"


@dataclass(slots=True)
class Workload:
    kind: str
    meta: Meta  # the workload's own metadata
    template: Meta  # namespace of the workload, labels of the pod template
    spec: PodSpec
    replicas: int = 1
    service_name: str = ""
    ordinal_start: int = 0
    source: Source | None = None
    strategy: Strategy = field(default_factory=Strategy)  # Deployments only
    min_ready_seconds: int = 0  # Deployments only (pktsim.control.deployment)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.meta.namespace, self.kind, self.meta.name


def encode(digest: bytes, length: int) -> str:
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, rest = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[rest])
    return "".join(chars)


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()


def template_hash(seed: int, namespace: str, name: str) -> str:
    return encode(_digest("pod-template-hash", seed, namespace, name), 10)


def name_suffix(seed: int, w: Workload, key: object, attempt: int) -> str:
    return encode(_digest("pod-name", seed, w.meta.namespace, w.kind, w.meta.name, key,
                          attempt), 5)


def read_workload(doc: Obj, kind: str, meta: Meta, source: Source) -> Workload:
    spec = doc.mapping("spec")
    template = spec.mapping("template", required=True)
    labels = template.mapping("metadata").str_map("labels", label_key, label_value)
    has_template = spec.has("template")  # else already reported: no second error inside it
    pod_spec = read_pod_spec(template.mapping("spec")) if has_template else PodSpec([])
    work = Workload(kind, meta, Meta(meta.name, meta.namespace, labels, None), pod_spec,
                    source=source)
    if kind != "DaemonSet":
        work.replicas = spec.integer("replicas", 1, 0, MAX_REPLICAS)
    if kind == "Deployment":
        work.strategy = read_strategy(spec.mapping("strategy"))
        work.min_ready_seconds = spec.integer("minReadySeconds", 0, 0, 2**31 - 1)
    if kind == "StatefulSet":
        work.service_name = spec.string("serviceName", check=dns_label)
        work.ordinal_start = spec.mapping("ordinals").integer("start", 0, 0, 2**31 - 1)
    selector = spec.mapping("selector").str_map("matchLabels", label_key, label_value)
    for key, value in selector.items():
        if labels.get(key) != value:
            path = f"{spec.at('selector.matchLabels')}[{key}]"
            doc.ctx.error(path, value, "does not match the pod template's labels",
                          f"the same label in {template.at('metadata.labels')}")
    return work


_PERCENT = re.compile(r"[0-9]+%")


def _int_or_percent(obj: Obj, key: str, default: int | str) -> int | str:
    """validation.go ``ValidatePositiveIntOrPercent`` and ``IsNotMoreThan100Percent``."""
    value = obj.raw(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        obj.ctx.error(obj.at(key), value, "must be an integer or a percent",
                      "e.g. 1 or '25%'")
        return default
    if isinstance(value, int):
        if value < 0:
            obj.ctx.error(obj.at(key), value, "must be greater than or equal to 0")
            return default
        return value
    if not _PERCENT.fullmatch(value):
        obj.ctx.error(obj.at(key), value, "must be a percent string",
                      "a number followed by '%', e.g. '25%'")
        return default
    if int(value[:-1]) > 100:
        obj.ctx.error(obj.at(key), value, "must not be greater than 100%")
        return default
    return value


def read_strategy(obj: Obj) -> Strategy:
    """``spec.strategy``, checked as pkg/apis/apps/validation ``ValidateDeploymentStrategy``
    and ``ValidateRollingUpdateDeployment`` do."""
    kind = obj.choice("type", ("RollingUpdate", "Recreate"), "RollingUpdate")
    if kind == "Recreate":
        if obj.has("rollingUpdate"):
            obj.ctx.error(obj.at("rollingUpdate"), obj.raw("rollingUpdate"),
                          "may not be specified when strategy `type` is 'Recreate'")
        return Strategy("Recreate", 0, 0)
    rolling = obj.mapping("rollingUpdate")
    surge = _int_or_percent(rolling, "maxSurge", "25%")
    unavailable = _int_or_percent(rolling, "maxUnavailable", "25%")
    if surge in (0, "0%") and unavailable in (0, "0%"):
        rolling.ctx.error(rolling.at("maxUnavailable"), unavailable,
                          "may not be 0 when `maxSurge` is 0", "at least 1 or 1%")
    return Strategy("RollingUpdate", surge, unavailable)


def materialized(workloads: list[Workload], pods: list[Pod]) -> set[tuple[str, str, str]]:
    """Workloads whose pods the stream already holds, or that another workload expands."""
    owned = {(p.namespace, p.owner.partition("/")[0], p.owner.partition("/")[2])
             for p in pods if "/" in p.owner}
    done = set(owned)
    deployments = {(w.meta.namespace, w.meta.name) for w in workloads if w.kind == "Deployment"}
    for w in workloads:
        owner = w.meta.owner
        if w.kind != "ReplicaSet" or owner is None or owner[0] != "Deployment":
            continue
        if (w.meta.namespace, owner[1]) in deployments:
            done.add(w.key)  # the Deployment expands it ...
            if w.key in owned:  # ... unless the stream holds the pods already
                done.add((w.meta.namespace, "Deployment", owner[1]))
    for namespace, kind, name in owned:  # pods of a ReplicaSet missing from the stream
        parent = name.rsplit("-", 1)[0]
        if kind == "ReplicaSet" and (namespace, parent) in deployments:
            done.add((namespace, "Deployment", parent))
    return done


def expand(w: Workload, seed: int, nodes: list[tuple[str, dict[str, str]]],
           taken: set[str]) -> list[Pod]:
    """The pods of workload ``w``; ``taken`` (pod keys in use) grows with their names."""
    if w.kind == "StatefulSet":
        return _stateful(w)
    if w.kind == "DaemonSet":
        chosen = [(n, n) for n, labels in nodes if _selects(w.spec.node_selector, labels)]
        return [_generated(w, seed, f"{w.meta.name}-", key, taken, node) for key, node in chosen]
    prefix = f"{w.meta.name}-"
    template = w.template
    if w.kind == "Deployment":
        digest = template_hash(seed, w.meta.namespace, w.meta.name)
        prefix += f"{digest}-"
        template = replace(template, labels={**template.labels, "pod-template-hash": digest})
    work = replace(w, template=template)
    return [_generated(work, seed, prefix, i, taken, None) for i in range(w.replicas)]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _generated(w: Workload, seed: int, prefix: str, key: object, taken: set[str],
               node: str | None) -> Pod:
    attempt = 0
    name = prefix + name_suffix(seed, w, key, attempt)
    while f"{w.meta.namespace}/{name}" in taken:
        attempt += 1
        name = prefix + name_suffix(seed, w, key, attempt)
    taken.add(f"{w.meta.namespace}/{name}")
    pod = workload_pod(w, name)
    if node is not None:
        pod.node_name = node
    return pod


def _stateful(w: Workload) -> list[Pod]:
    out = []
    for ordinal in range(w.ordinal_start, w.ordinal_start + w.replicas):
        name = f"{w.meta.name}-{ordinal}"
        labels = {**w.template.labels, "statefulset.kubernetes.io/pod-name": name,
                  "apps.kubernetes.io/pod-index": str(ordinal)}
        pod = workload_pod(replace(w, template=replace(w.template, labels=labels)), name)
        pod.hostname = name
        pod.subdomain = w.service_name
        out.append(pod)
    return out


def workload_pod(w: Workload, name: str) -> Pod:
    """The pod named ``name`` made from the workload's template."""
    assert w.source is not None
    pod = make_pod(w.template, name, w.spec, w.source)
    pod.owner = f"{w.kind}/{w.meta.name}"
    return pod
