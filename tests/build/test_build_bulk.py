"""The shortcuts a big build takes give what the plain ways give.

* ``OneShot`` draws are ``Streams`` draws (MACs and veth names stay byte for byte);
* ``RoutingTable.add_many`` leaves the table ``add`` one by one leaves;
* a namespace's lazily made random stream draws what an eagerly made one draws;
* ``gc_paused`` freezes the objects of a big bulk step (and ``thaw`` gives them back);
* an app started at build time gets a driver event only when it has something to apply.
"""

from __future__ import annotations

import gc
import random
from ipaddress import IPv4Address, IPv4Network

import pytest

from pktsim.build.start import start_at_zero
from pktsim.core.seeding import Streams
from pktsim.devices.apps import TcpServerApp
from pktsim.devices.netns import Netns
from pktsim.devices.routes import Route, RoutingTable, _insert_each, order_key
from pktsim.driver.driver import Driver
from pktsim.model import bulk
from pktsim.model.draws import OneShot


@pytest.mark.parametrize("seed", [0, 1, 7, 2**40])
def test_one_shot_draws_are_the_streams_first_draws(seed: int) -> None:
    draw = OneShot(seed)
    for i in range(50):
        name = f"pod/team-{i % 3}/web-{i}/eth0"
        assert draw.mac(name) == Streams(seed).mac(name)
        assert draw.hex8(name) == Streams(seed).hex8(name)


def _routes(rng: random.Random, n: int) -> list[Route]:
    out = []
    for i in range(n):
        prefix = rng.choice((0, 8, 16, 24, 24, 32))
        net = IPv4Network((rng.getrandbits(32), prefix), strict=False)
        out.append(Route(net, f"dev{i}", metric=rng.choice((0, 0, 100))))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_add_many_is_add_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    first, more = _routes(rng, 6), _routes(rng, 40)
    plain, bulk_table, keyed = RoutingTable(), RoutingTable(), RoutingTable()
    for table in (plain, bulk_table, keyed):
        for route in first:
            table.add(route)
    for route in more:
        plain.add(route)
    bulk_table.add_many(more)
    ordered = sorted(more, key=order_key)
    keyed.add_many(ordered, [order_key(r) for r in ordered])
    assert [r.dev for r in bulk_table.routes] == [r.dev for r in plain.routes]
    assert [r.dev for r in keyed.routes] == [r.dev for r in plain.routes]
    assert bulk_table.dump() == plain.dump()


@pytest.mark.parametrize("seed", range(5))
def test_add_many_merges_as_inserting_each_table_route(seed: int) -> None:
    """The one-pass merge leaves what putting each route of the table into the added ones
    (from the last, before an equal key) leaves; a table set by hand out of order too."""
    rng = random.Random(seed)
    first, more = _routes(rng, 12), _routes(rng, 60)
    ordered = sorted(more, key=order_key)
    keys = [order_key(r) for r in ordered]
    for table_routes in (sorted(first, key=order_key), first):
        table = RoutingTable()
        table.routes = list(table_routes)
        want = _insert_each(list(ordered), list(keys), list(table_routes),
                            [order_key(r) for r in table_routes])
        table.add_many(ordered, keys)
        assert table.routes == want


def test_route_text_is_made_when_asked() -> None:
    route = Route(IPv4Network("10.244.1.0/24"), "eth0", IPv4Address("10.0.0.1"), onlink=True)
    assert route.text == "10.244.1.0/24 via 10.0.0.1 dev eth0 onlink"
    assert route.detail.as_json() == {"route": route.text} and route.detail is route.detail


def test_a_lazy_stream_draws_what_an_eager_one_does() -> None:
    eager = Netns("a", rng=Streams(3).stream("netns/a"))
    lazy_streams = Streams(3)
    lazy = Netns("a", rng_factory=lambda: lazy_streams.stream("netns/a"))
    assert "netns/a" not in lazy_streams._streams  # not made until drawn from
    assert [lazy.rng.getrandbits(16) for _ in range(5)] == \
        [eager.rng.getrandbits(16) for _ in range(5)]
    assert Netns("b").rng.random() == random.Random(0).random()


def test_a_big_bulk_step_is_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "FREEZE_AT", 1000)
    before = gc.get_freeze_count()
    try:
        with bulk.gc_paused():
            assert not gc.isenabled()
            made = [[i] for i in range(5000)]
        assert gc.isenabled() and gc.get_freeze_count() >= before + len(made)
    finally:
        bulk.thaw()
    assert gc.get_freeze_count() == 0


class _Timer:
    """An app that wants the CPU at 5 ns: its start must arm the namespace."""

    def start(self, now: int, t: object, r: object) -> None:
        return None

    def next_deadline(self) -> int | None:
        return 5

    def on_deadline(self, now: int, t: object, r: object) -> None:
        return None


def test_a_quiet_start_needs_no_event_and_a_timer_gets_one() -> None:
    driver, ns = Driver(), Netns("a")
    start_at_zero(driver, ns, TcpServerApp(80, "web"))
    assert driver.idle and 80 in ns.l4.listeners
    start_at_zero(driver, ns, _Timer())
    assert not driver.idle
