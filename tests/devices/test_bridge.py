"""The node bridge against a model of Linux's: learning, flooding, hairpin, ageing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pktsim.core.events import Drop, DropReason
from pktsim.core.frame import Frame
from pktsim.devices.bridge import AGEING_NS, Bridge

PORTS = ["veth0", "veth1", "veth2", "veth3"]
MACS = [bytes([2, 0, 0, 0, 0, i]) for i in range(1, 6)]
BRIDGE_MAC = bytes([2, 0xBB, 0, 0, 0, 1])
BCAST = b"\xff" * 6

frames = st.lists(st.tuples(
    st.integers(0, 400 * 10**9),  # time step
    st.sampled_from(PORTS),
    st.sampled_from(MACS),  # source
    st.sampled_from([*MACS, BCAST, BRIDGE_MAC]),  # destination
), max_size=60)


def make(hairpin: set[str]) -> Bridge:
    br = Bridge("node-1", "cbr0", BRIDGE_MAC)
    for p in PORTS:
        br.add_port(p, hairpin=p in hairpin)
    return br


@given(frames, st.sets(st.sampled_from(PORTS)))
def test_bridge_behaves_like_linux(seq: list[tuple[int, str, bytes, bytes]],
                                   hairpin: set[str]) -> None:
    br = make(hairpin)
    model: dict[bytes, tuple[str, int]] = {}  # mac -> (port, last seen)
    now = 0
    for i, (step, port, src, dst) in enumerate(seq):
        now += step
        data = dst + src + b"\x08\x00" + bytes(46)
        reaction = br.receive(now, port, Frame(data, i))
        outs = [e.port for e in reaction.emits]
        assert all(e.frame.data == data for e in reaction.emits)  # bridges never rewrite
        assert len(outs) == len(set(outs))  # never twice out of one port
        if port not in hairpin:
            assert port not in outs  # should_deliver(): not out of the ingress port
        model[src] = (port, now)
        everyone = [p for p in PORTS if p != port or p in hairpin]
        if dst == BCAST:
            assert sorted(outs) == sorted([*everyone, "cbr0"])
        elif dst == BRIDGE_MAC:
            assert outs == ["cbr0"]
        elif dst in model and now - model[dst][1] <= AGEING_NS:
            learned = model[dst][0]
            assert outs == ([learned] if learned != port or port in hairpin else [])
        else:
            assert sorted(outs) == sorted(everyone)  # unknown unicast: flood, not up


def test_entry_ages_out_after_300_seconds() -> None:
    br = make(set())
    a, b = MACS[0], MACS[1]
    br.receive(0, "veth1", Frame(a + b + b"\x08\x00" + bytes(46), 1))  # learn b on veth1
    at_300 = br.receive(300 * 10**9, "veth0", Frame(b + a + b"\x08\x00" + bytes(46), 2))
    assert [e.port for e in at_300.emits] == ["veth1"]
    br2 = make(set())
    br2.receive(0, "veth1", Frame(a + b + b"\x08\x00" + bytes(46), 1))
    at_301 = br2.receive(301 * 10**9, "veth0", Frame(b + a + b"\x08\x00" + bytes(46), 2))
    assert sorted(e.port for e in at_301.emits) == ["veth1", "veth2", "veth3"]
    assert any(s.event == "flood" for s in at_301.steps)


def test_invalid_source_and_runt_frames_are_dropped_with_a_reason() -> None:
    br = make(set())
    runt = br.receive(0, "veth0", Frame(b"\x01\x02", 1))
    assert not runt.emits and runt.steps[0].detail == Drop(DropReason.MALFORMED)
    mcast_src = br.receive(0, "veth0", Frame(BCAST + BCAST + b"\x08\x00", 2))
    assert not mcast_src.emits and mcast_src.steps[0].event == "drop"
