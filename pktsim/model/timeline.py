"""A cluster that changes while traffic flows: ``spec.events`` of ``kind: Traffic`` as data,
and the control-plane settings of ``kind: Cluster`` that decide how fast the cluster reacts.

A ``Change`` is what a user (or ``kubectl``) does at a moment: ``apply`` an object, ``delete``
one, ``scale`` a workload, ``fail`` or ``recover`` a node.  What follows from it -- a pod turning
Terminating, the EndpointSlice controller's update, kube-proxy's next sync, the CNI tearing a
sandbox down -- is not written here: ``pktsim.control`` derives it with the delays of
``ControlConfig``, as the real control loops would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # objects.py holds these types in Scenario and ClusterConfig
    from pktsim.model.objects import Source

SECOND = 10**9
ACTIONS = ("apply", "delete", "scale", "fail", "recover")


@dataclass(slots=True)
class Change:
    """One entry of ``spec.events``: at ``at_ns`` (virtual ns since the start), one action.

    ``kind``/``namespace``/``name`` name the object the action is about (``Node`` and an
    empty namespace for ``fail``/``recover``; the workload kind for ``scale``).  ``obj`` is
    the object an ``apply`` brings, read by the same readers as a document of the stream:
    a ``model.objects.Pod``, ``Service``, ``EndpointSlice``, ``Node``, a
    ``model.policy.NetworkPolicy`` or a ``scenario.workloads.Workload``."""

    at_ns: int
    action: str  # one of ACTIONS
    kind: str
    namespace: str
    name: str
    obj: Any = None  # apply: the object read
    replicas: int | None = None  # scale: the new spec.replicas
    source: Source | None = None
    path: str = ""  # where in its document: ``spec.events[2]``

    @property
    def key(self) -> str:
        """``ns/name``, or the name alone for cluster-scoped kinds (nodes)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def label(self) -> str:
        """How the trace and the run summary name it: ``delete Pod default/web-0``."""
        what = f"{self.kind} {self.key}"
        if self.action == "scale":
            return f"scale {what} to {self.replicas}"
        if self.action in ("fail", "recover"):
            return f"{self.action} node {self.name}"
        return f"{self.action} {what}"


@dataclass(slots=True)
class ControlConfig:
    """How fast the control loops react (``kind: Cluster`` ``spec.kubeProxy``,
    ``spec.controllers``, ``spec.kubelet``); defaults are the components' own, cited where
    they are read (``pktsim.control``)."""

    # kube-proxy iptables.minSyncPeriod 1s / iptables.syncPeriod 30s
    # (SetDefaults_KubeProxyConfiguration, kubernetes pkg/proxy/apis/config/v1alpha1/defaults.go)
    min_sync_period_ns: int = 1 * SECOND
    sync_period_ns: int = 30 * SECOND
    # kube-proxy's deletion of stale UDP conntrack entries (pkg/proxy/conntrack); off shows
    # the classic failure: UDP kept flowing to an endpoint that is gone
    conntrack_cleanup: bool = True
    # kube-controller-manager --endpointslice-updates-batch-period: 0, left unset by
    # RecommendedDefaultEndpointSliceControllerConfiguration
    # (pkg/controller/endpointslice/config/v1alpha1/defaults.go)
    endpoint_updates_batch_period_ns: int = 0
    # kube-controller-manager --node-monitor-grace-period: 50s since Kubernetes 1.32 (40s
    # before), RecommendedDefaultNodeLifecycleControllerConfiguration
    # (pkg/controller/nodelifecycle/config/v1alpha1/defaults.go)
    node_monitor_grace_period_ns: int = 50 * SECOND
    # kube-apiserver --default-unreachable-toleration-seconds 300: the NoExecute toleration
    # every pod gets for node.kubernetes.io/unreachable, the taint of a node whose Ready
    # condition is Unknown (plugin/pkg/admission/defaulttolerationseconds/admission.go)
    unreachable_toleration_ns: int = 300 * SECOND
    # pktsim's own: from a pod's creation to its containers running and Ready (no probes
    # are modelled); real clusters take from well under a second to many
    pod_startup_ns: int = 1 * SECOND
