"""A node that fails and comes back, and the node lifecycle controller that notices.

Theory of operation
-------------------
``fail``: the node's namespaces, bridge and tunnels stop at once (the driver drops what
reaches them and holds their timers: a machine powered off or cut from the network).  Its
kube-proxy and kubelet stop with it.  The node lifecycle controller hears no heartbeat for
``nodeMonitorGracePeriod`` (kube-controller-manager ``--node-monitor-grace-period``, read in
pkg/controller/nodelifecycle ``monitorNodeHealth``) and sets the node's Ready condition to
Unknown, marks its pods not Ready (``MarkPodsNotReady``): the EndpointSlice controller
drops them and every other node's kube-proxy syncs.  The ``node.kubernetes.io/unreachable``
taint evicts the pods once their toleration runs out (300 s, kube-apiserver
``--default-unreachable-toleration-seconds``, plugin/pkg/admission/defaulttolerationseconds):
every pod, bare or owned, hostNetwork or not (pkg/controller/tainteviction
``processPodOnNode`` looks at tolerations only), but a DaemonSet's, which tolerate the taint
without a time limit (pkg/controller/daemon/util ``AddOrUpdateDaemonPodTolerations``).  They
are deleted and their controllers replace them on the nodes that are up; they stay
Terminating while the kubelet that would end them is down.

``recover``: the node runs again with the state it had (a network partition that heals; a
reboot's lost conntrack and ARP caches are not modelled).  kubelet reports in: the node is
Ready, its pods are Ready again -- or ended, if they were deleted meanwhile -- and its
kube-proxy syncs with everything it missed.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from pktsim.core.frame import Device

if TYPE_CHECKING:
    from pktsim.control.plane import ControlPlane

LIFECYCLE = "node-lifecycle-controller"


def node_devices(plane: ControlPlane, node: str) -> list[Device]:
    """Everything that runs on the node: its namespace, bridge, tunnels and pods."""
    topo = plane.topo
    devices: list[Device] = [topo.node_ns[node]]
    if node in topo.bridges:
        devices.append(topo.bridges[node])
    if node in topo.tunnels:
        devices.append(topo.tunnels[node])
    if node in topo.tunnels6:
        devices.append(topo.tunnels6[node])
    devices += [topo.pod_ns[p.key] for p in plane.model.pods.values()
                if p.node == node and p.key in topo.pod_ns and not p.pod.host_network]
    return devices


def fail(plane: ControlPlane, node: str) -> None:
    plane.failed.add(node)
    plane.failed_at[node] = plane.driver.now
    plane.driver.set_down(node_devices(plane, node), True)
    plane.note("kubectl", f"node {node} fails: it stops forwarding and answering", (node,),
               host=node)
    plane.driver.at(plane.driver.now + plane.config.node_monitor_grace_period_ns,
                    partial(_not_ready, plane, node, plane.driver.now))


def _not_ready(plane: ControlPlane, node: str, since: int) -> None:
    if node not in plane.failed or plane.failed_at.get(node) != since:
        return
    plane.note(LIFECYCLE, f"node {node}: no heartbeat for "
               f"{plane.config.node_monitor_grace_period_ns / 1e9:g} s: Ready=Unknown, its "
               "pods not Ready", (node,))
    for info in [p for p in plane.model.pods.values() if p.node == node]:
        plane.set_ready(info, False, LIFECYCLE)
    plane.publish_endpoints()
    plane.driver.at(plane.driver.now + plane.config.unreachable_toleration_ns,
                    partial(_evict, plane, node, since))


def _evict(plane: ControlPlane, node: str, since: int) -> None:
    if node not in plane.failed or plane.failed_at.get(node) != since:
        return
    for info in [p for p in plane.model.pods.values()
                 if p.node == node and not p.pod.owner.startswith("DaemonSet/")]:
        plane.delete_pod(info.key, "taint-eviction-controller")


def recover(plane: ControlPlane, node: str) -> None:
    plane.failed.discard(node)
    plane.failed_at.pop(node, None)
    plane.driver.set_down(node_devices(plane, node), False)
    plane.note("kubectl", f"node {node} recovers: it forwards and answers again", (node,),
               host=node)
    for info in [p for p in plane.model.pods.values() if p.node == node]:
        if info.key in plane.deleting:
            plane.end_pod_now(info.key)
        else:
            plane.set_ready(info, True, "kubelet")
    for key, pending in list(plane.pending.items()):
        if pending.node == node:
            plane.driver.at(plane.driver.now, partial(plane.start_pending, key))
    plane.publish_endpoints()
    plane.runners[node].request(plane.driver.now)
