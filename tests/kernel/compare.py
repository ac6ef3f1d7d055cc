"""What every kernel comparison shares: pktsim's frames keyed as the harness keys the
kernel's, both sides normalised the same way, and a readable diff."""

from __future__ import annotations

import subprocess
from typing import Any

from twin import NodeSpec, PodSpec, normalize

from pktsim.api import Result
from pktsim.core.capture import Direction, LinkType
from pktsim.sinks.trace import CapturedFrame
from pktsim.wire.parse import mac_str

Frames = list[tuple[bytes, str]]


# How long after the traffic's last IP packet the kernel's capture is still compared: the
# harness stops its tcpdumps once the traffic is done and the counters are still, within
# a second or two; ARP's retries of a failing resolution (3 x retrans_time 1 s) still fall
# inside, a neighbour entry's reachability probe (delay_first_probe_time 5 s after an
# unconfirmed use, checked against the kernel in test_kernel_compare.py) after.
CAPTURE_TAIL_NS = 4 * 10**9


def captured(result: Result, tail: int = CAPTURE_TAIL_NS) -> list[CapturedFrame]:
    """pktsim's frames in the window the kernel's capture covers: up to
    ``CAPTURE_TAIL_NS`` after the last IP (or IPv6, but Neighbor Discovery) frame."""
    assert result.memory is not None
    frames = result.memory.frames
    ip = [f.t_abs_ns for f in frames if (f.data[12:14] == b"\x08\x00" or
                                         (f.data[12:14] == b"\x86\xdd" and not _nd(f.data)))
          or f.iface.linktype != LinkType.ETHERNET]
    if not ip:
        return list(frames)
    end = max(ip) + tail
    return [f for f in frames if f.t_abs_ns <= end]


def _nd(frame: bytes) -> bool:
    """Neighbor Discovery: IPv6's ARP, which (as ARP) does not extend the window."""
    return len(frame) > 54 and frame[20] == 58 and 133 <= frame[54] <= 137


def pktsim_frames(result: Result, keys: dict[str, str],
                  tail: int = CAPTURE_TAIL_NS) -> dict[str, Frames]:
    """pktsim's frames per harness key (``keys``: pktsim if_name -> harness key), in the
    window the kernel's capture covers (``captured``)."""
    out: dict[str, Frames] = {k: [] for k in keys.values()}
    for f in captured(result, tail):
        key = keys.get(f.iface.if_name)
        if key is not None:
            out[key].append((f.data, "out" if f.direction == Direction.OUTBOUND else "in"))
    return out


def harness_keys(result: Result, node_devices: tuple[str | None, ...],
                 extra: tuple[str, ...] = ()) -> dict[str, str]:
    """pktsim ``iface.if_name`` -> harness key: ``node_devices`` (None: left out) of both
    nodes, each ``default`` pod's ``eth0`` (keyed by the pod's name) and its host-side veth,
    and ``extra`` interfaces under their own names."""
    model = result.topology.model
    keys = {f"{node}:{dev}": f"{node}:{dev}" for node in ("node-1", "node-2")
            for dev in node_devices if dev}
    for info in model.pods.values():
        if info.pod.namespace == "default" and not info.pod.host_network:
            keys[f"{info.key}:eth0"] = f"{info.pod.name}:eth0"
            keys[f"{info.node}:{info.veth}"] = f"{info.node}:{info.veth}"
    return {**keys, **{k: k for k in extra}}


def kernel_nodes(result: Result, namespace: str | None = None) -> list[NodeSpec]:
    """The two nodes and their pods (of ``namespace``, or all) with pktsim's MACs and names."""
    model = result.topology.model
    nodes = []
    for name in ("node-1", "node-2"):
        n = model.nodes[name]
        pods = tuple(PodSpec(p.pod.name, str(p.ip), mac_str(p.mac), p.veth, mac_str(p.veth_mac))
                     for p in sorted(model.pods_on(name), key=lambda p: p.key)
                     if namespace is None or p.pod.namespace == namespace)
        nodes.append(NodeSpec(name, str(n.ip), mac_str(n.eth0_mac), str(n.pod_cidr),
                              mac_str(n.bridge_mac), pods, mac_str(n.vtep_mac)))
    return nodes


def comparable(frames: Frames, names: dict[str, str], **kw: Any) -> list[dict[str, Any]]:
    rows = normalize([f for f, _ in frames], names, **kw)
    for row, (_, direction) in zip(rows, frames, strict=True):
        row["dir"] = direction
    return rows


def kernel_comparable(cap: Any, key: str, names: dict[str, str],
                      **kw: Any) -> list[dict[str, Any]]:
    rows = normalize(cap.frames[key], names, pkttypes=cap.pkttypes[key], **kw)
    for row in rows:
        row.pop("pkttype", None)
    return rows


def request_and_body(result: Result, iface: str) -> tuple[str, str]:
    """The HTTP request pktsim's client sent on ``iface``, and the body it got back."""
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether

    assert result.memory is not None
    request = None
    for f in result.memory.frames:
        if f.iface.if_name != iface:
            continue
        pkt = Ether(f.data)
        if TCP in pkt and bytes(pkt[TCP].payload).startswith(b"GET "):
            request = bytes(pkt[TCP].payload).decode()
            break
    assert request is not None, "no request in the pktsim capture"
    body = result.flows[0].first_answer.partition(b"\r\n\r\n")[2].decode()
    return request, body


def pktk_namespaces(tag: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.startswith(tag)]


def diff(key: str, mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    lines = [f"{key}: pktsim {len(mine)} frames, kernel {len(theirs)} frames"]
    for i in range(max(len(mine), len(theirs))):
        a = mine[i] if i < len(mine) else {}
        b = theirs[i] if i < len(theirs) else {}
        if a != b:
            keys = sorted(set(a) | set(b))
            changed = {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}
            lines.append(f"  frame {i}: {changed}")
    return "\n".join(lines[:25])
