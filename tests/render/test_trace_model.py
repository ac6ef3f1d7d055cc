"""The trace model (``pktsim.trace``): one regrouping of the event stream that the story,
the displays and the invariants share, with addresses read from the frame bytes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pktsim
from pktsim.api import Result
from pktsim.core.events import FRAME_EVENTS, Event
from pktsim.display.packets import dissect
from pktsim.strategies import clusters, flow_lists
from pktsim.trace import Trace


def _scapy_ends(data: bytes, raw: bool) -> tuple[str, str] | None:
    """The innermost IPv4 header's addresses (ports for TCP/UDP) as scapy dissects them."""
    from scapy.layers.inet import IP, TCP, UDP

    pkt = dissect(data, raw)
    ip = None
    layer = pkt
    while layer is not None and layer.name != "NoPayload":
        if isinstance(layer, IP):
            ip = layer
        layer = layer.payload if layer.payload else None
    if ip is None:
        return None
    l4 = ip.payload
    if isinstance(l4, TCP | UDP) and not ip.frag:
        return f"{ip.src}:{l4.sport}", f"{ip.dst}:{l4.dport}"
    return ip.src, ip.dst


def _check_model(result: Result) -> None:
    assert result.memory is not None
    trace = Trace.of(result)
    captured = [e for e in trace.events if e.event in FRAME_EVENTS and e.packet is not None]
    seen: dict[int, int] = {}
    for packet in trace:
        times = [e.t for hop in packet.hops for e in hop.steps]
        assert times == sorted(times), f"packet {packet.pid}: hops out of time order"
        for hop in packet.hops:
            assert all(e.host == hop.host and e.packet == packet.pid for e in hop.steps)
            for e in hop.rx + hop.tx:
                assert e.frame is not None
                seen[e.frame] = seen.get(e.frame, 0) + 1
    assert sorted(seen) == sorted(e.frame for e in captured if e.frame is not None)
    assert set(seen.values()) <= {1}, "a frame in two packets' hops"
    pids = [p.pid for p in trace]
    assert pids == list(dict.fromkeys(e.packet for e in trace.events if e.packet is not None))
    for e in captured[:200]:
        f = trace.captured(e)
        assert f is not None
        assert trace.addresses(e) == _scapy_ends(f.data, f.iface.linktype == 101), \
            f"frame #{e.frame}"


def test_demo_trace_model() -> None:
    result = pktsim.demo_cluster("vxlan").run()
    _check_model(result)
    trace = Trace.of(result)
    flow = result.flows[0].flow
    sub = trace.flow(flow)
    assert sub.packets and all(p.flow == flow for p in sub)
    first = next(p for p in sub if p.is_ip)
    assert first.sender and first.receiver
    assert first.first is not None and first.first.event in (Event.TX, Event.RX)
    assert all(d.event not in FRAME_EVENTS for hop in first.hops for d in hop.decisions)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_every_frame_in_one_packet(data: st.DataObject) -> None:
    cluster = data.draw(clusters(max_nodes=2))
    flows = data.draw(flow_lists(cluster, max_size=2))
    _check_model(cluster.run(flows=flows))
