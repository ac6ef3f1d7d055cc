"""Cluster DNS: CoreDNS as kubeadm deploys it, the upstream resolver, and the pods' resolvers.

Pure logic, no networking; each piece is sans-IO (events in, actions out) and is wired onto
the emulated network by the builder:

* ``zone.ClusterZone`` -- the kubernetes plugin (answers for ``cluster.local`` and the
  reverse zones); ``server.CoreDns`` -- one CoreDNS pod: kubernetes + forward + cache +
  loadbalance, replies packed as CoreDNS packs them (``wire.encode``);
* ``upstream.UpstreamResolver`` -- the recursive resolver on the external network;
* ``resolv.resolv_conf`` -- a pod's ``/etc/resolv.conf`` (kubelet + containerd);
* ``stub.StubResolver`` -- glibc's resolver (search list, A+AAAA on one socket, timeouts,
  attempts, TC -> TCP);

``tests/helpers/dnslab.DnsLab`` wires all of the above together in memory for the unit tests.
"""

from pktsim.dns.resolv import ResolvConf, node_resolv_conf, resolv_conf
from pktsim.dns.search import StubOptions, candidates
from pktsim.dns.server import CloseConn, CoreDns, Forward, Reply
from pktsim.dns.stub import (
    CloseTcp,
    CloseUdp,
    Done,
    Resolution,
    SendTcp,
    SendUdp,
    StubResolver,
)
from pktsim.dns.upstream import UpstreamResolver
from pktsim.dns.wire import encode
from pktsim.dns.zone import ClusterZone

__all__ = ["CloseConn", "CloseTcp", "CloseUdp", "ClusterZone", "CoreDns", "Done",
           "Forward", "Reply", "Resolution", "ResolvConf", "SendTcp", "SendUdp",
           "StubOptions", "StubResolver", "UpstreamResolver", "candidates", "encode",
           "node_resolv_conf", "resolv_conf"]
