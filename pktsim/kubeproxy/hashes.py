"""kube-proxy's chain names: a 16-character base32 digest of the service port name.

Theory of operation
-------------------
kube-proxy (``pkg/proxy/iptables/proxier.go``) names its per-service chains with
``portProtoHash(servicePortName, protocol)`` = ``base32.StdEncoding(sha256(servicePortName +
protocol))[:16]`` and its per-endpoint chains with the same digest over ``servicePortName +
protocol + endpoint``.  ``servicePortName`` is ``ServicePortName.String()``: ``ns/name:port``,
or ``ns/name`` with no colon when the port has no name (``fmtPortName``); ``protocol`` is
lower-case (``strings.ToLower``) and ``endpoint`` is ``net.JoinHostPort(ip, port)``.  Nothing
separates the parts.  Iptables chain names may have at most 28 characters, which the
16-character digest keeps every prefix below.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv6Address

SVC = "KUBE-SVC-"  # Cluster-policy endpoint dispatch
SVL = "KUBE-SVL-"  # Local-policy endpoint dispatch
EXT = "KUBE-EXT-"  # external destinations (NodePort, LoadBalancer, externalIPs)
FW = "KUBE-FW-"  # loadBalancerSourceRanges
SEP = "KUBE-SEP-"  # one endpoint
PREFIXES = (SVC, SVL, EXT, FW, SEP)


def service_port_name(namespace: str, name: str, port_name: str = "") -> str:
    """``ServicePortName.String()``: ``ns/name:port``, or ``ns/name`` for an unnamed port."""
    return f"{namespace}/{name}:{port_name}" if port_name else f"{namespace}/{name}"


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 base32, as Go's base32.StdEncoding
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # 10 bits -> 2 characters


def _digest(text: str) -> str:
    """The first 16 characters of the base32 SHA-256: those of its first 80 bits (5 bytes
    make 8 characters), encoded 10 bits at a time — a big cluster names 160,000 chains and
    ``base64.b32encode`` of the whole digest was a quarter of the time it took."""
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    pairs = _B32_PAIRS
    return "".join([pairs[(n >> shift) & 1023] for shift in range(70, -1, -10)])


def service_chain_suffix(svc_port_name: str, protocol: str) -> str:
    """``portProtoHash``: the suffix shared by KUBE-SVC/SVL/EXT/FW of one service port."""
    return _digest(svc_port_name + protocol.lower())


def join_host_port(ip: IPv4Address | IPv6Address | str, port: int) -> str:
    """``net.JoinHostPort``: ``ip:port``, ``[ip]:port`` for IPv6."""
    text = str(ip)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def service_chain_name(svc_port_name: str, protocol: str, prefix: str = SVC) -> str:
    """``KUBE-SVC-<hash>`` (or another service-level prefix: SVL, EXT, FW)."""
    if prefix not in (SVC, SVL, EXT, FW):
        raise ValueError(f"not a service chain prefix: {prefix!r}")
    return prefix + service_chain_suffix(svc_port_name, protocol)


def endpoint_chain_name(svc_port_name: str, protocol: str, endpoint: str) -> str:
    """``KUBE-SEP-<hash>`` for ``endpoint`` = ``ip:port`` (``join_host_port``)."""
    return SEP + _digest(svc_port_name + protocol.lower() + endpoint)


def is_service_chain(chain: str) -> bool:
    """``isServiceChainName``: a chain kube-proxy creates per service or endpoint."""
    return chain.startswith(PREFIXES)
