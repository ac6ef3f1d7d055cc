"""The neighbour table's reachability states over time (net/core/neighbour.c
``neigh_timer_handler``, ``neigh_event_send``), on the table itself."""

from __future__ import annotations

from pktsim.devices.neigh import DELAY_PROBE_NS, NeighTable

S = 10**9
IP, MAC = bytes([10, 244, 1, 2]), bytes.fromhex("0a0000000002")


def reachable() -> tuple[NeighTable, int]:
    table = NeighTable("node-2")
    table.set("cbr0", IP, MAC, "REACHABLE", now=0)  # an ARP reply at t = 0
    return table, table.reachable_time("cbr0", 0)


def test_reachable_time_is_drawn_in_half_to_three_halves_of_30_s() -> None:
    _, reach = reachable()
    assert 15 * S <= reach < 45 * S


def test_sending_through_a_reachable_entry_does_not_keep_it_reachable() -> None:
    """Forwarded traffic every 0.5 s, nothing confirming: the entry turns STALE when its
    reachable_time is over (the cached header leaves ``used`` alone), the first packet
    after that makes it DELAY, and delay_first_probe_time later the timer probes.  (As the
    kernel does: two namespaces, UDP every 0.5 s, `ip neigh` goes REACHABLE, STALE, DELAY.)"""
    table, reach = reachable()
    entry = table.get("cbr0", IP)
    assert entry is not None
    t = 0
    while t + S // 2 <= reach:
        t += S // 2
        assert table.use("cbr0", IP, t) == MAC
        assert table.state_at(entry, t) == "REACHABLE"
    assert entry.next_probe is None  # no timer armed by the sends
    after = t + S // 2
    assert table.state_at(entry, after) == "STALE"
    assert table.use("cbr0", IP, after) == MAC  # a STALE entry still sends ...
    assert entry.state == "DELAY" and entry.next_probe == after + DELAY_PROBE_NS
    assert table.check(entry, after + DELAY_PROBE_NS) == "PROBE"


def test_a_confirmation_during_delay_makes_it_reachable_again() -> None:
    table, reach = reachable()
    entry = table.get("cbr0", IP)
    assert entry is not None
    use = reach + S
    table.use("cbr0", IP, use)
    table.confirm("cbr0", IP, use + S)  # a TCP ACK that moves forward (dst_confirm_neigh)
    assert table.check(entry, use + DELAY_PROBE_NS) == "REACHABLE"
