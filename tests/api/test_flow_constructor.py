"""``pktsim.flow`` and the CLI's ``trace`` make flows with the loader's own checks, and
``pktsim.observing`` sees every run in its block only."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pktsim
from pktsim.errors import ScenarioErrors


def test_a_flow_has_the_traffic_defaults() -> None:
    f = pktsim.flow("default/client", "http://10.96.45.12/")
    assert (f.name, f.source_ref, f.target, f.protocol, f.count, f.ttl) == (
        "flow", "default/client", "http://10.96.45.12/", "tcp", 1, None)
    ping = pktsim.flow("default/client", "10.244.1.2", protocol="ICMP", payload=3,
                       start="1.5s", ttl=2)
    assert (ping.protocol, ping.payload, ping.start_ns, ping.ttl) == ("icmp", b"abc",
                                                                      1_500_000_000, 2)
    lookup = pktsim.flow("default/client", lookup="web.shop", type="srv")
    assert (lookup.lookup, lookup.qtype, lookup.protocol) == ("web.shop", "SRV", "udp")
    stub = pktsim.flow("default/client", lookup="web.shop", count=3, interval="250ms",
                       source_port=5353)
    assert (stub.count, stub.interval_ns, stub.source_port) == (3, 250_000_000, 5353)
    with pytest.raises(pktsim.ScenarioError, match="source_port: 0 is out of range"):
        pktsim.flow("default/client", lookup="web.shop", source_port=0)


@pytest.mark.parametrize(("kwargs", "line"), [
    ({"ttl": 0}, "ttl: 0 is out of range; valid: 1-255"),
    ({"count": 0}, "count: 0 is out of range; valid: 1-1000000"),
    ({"protocol": "sctp"}, "protocol: 'sctp'"),
    ({"to": "http://x:99999/"}, "to: 'http://x:99999/' has a port out of range"),
    ({"protocol": "icmp", "to": "10.0.0.1:80"}, "has a port, which ICMP does not use"),
    ({"lookup": "web.shop"}, "to: '10.0.0.1:80' is given with lookup"),
])
def test_a_bad_flow_is_refused_naming_the_field(kwargs: dict[str, object], line: str) -> None:
    args = {"to": "10.0.0.1:80", **kwargs}
    with pytest.raises(pktsim.ScenarioError) as err:
        pktsim.flow("default/client", **args)  # type: ignore[arg-type]
    assert line in str(err.value)
    assert "document" not in str(err.value)  # no file, no document: it came from Python


def test_several_problems_are_all_named() -> None:
    with pytest.raises(ScenarioErrors) as err:
        pktsim.flow("not a source", "10.0.0.1:80", count=-1)
    assert [line.split(":")[0] for line in err.value.lines()] == ["from", "count"]


@given(st.integers(-1000, 1000))
def test_ttl_is_accepted_exactly_in_1_to_255(ttl: int) -> None:
    try:
        made = pktsim.flow("default/a", "10.0.0.1:80", ttl=ttl)
    except pktsim.ScenarioError:
        assert not 1 <= ttl <= 255
    else:
        assert 1 <= ttl <= 255 and made.ttl == ttl


def _trace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pktsim", "trace", "-", "--from",
                           "default/client", *args], input="", capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize(("args", "line"), [
    (["--to", "10.0.0.1", "--port", "80", "--ttl", "256"], "pktsim: --ttl: 256 is out of range"),
    (["--to", "10.0.0.1", "--port", "80", "--count", "0"], "pktsim: --count: 0 is out of range"),
    (["--to", "10.0.0.1", "--port", "70000"], "pktsim: --to: '10.0.0.1:70000' has a port out"),
])
def test_the_cli_checks_its_flow_as_the_loader_does(args: list[str], line: str) -> None:
    proc = _trace(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(line), proc.stderr


def test_observing_sees_the_runs_of_its_block_only() -> None:
    cluster = pktsim.demo_cluster()
    ping = pktsim.flow("default/client", "10.244.1.2", name="p", protocol="icmp")
    outer: list[pktsim.Result] = []
    inner: list[pktsim.Result] = []
    with pktsim.observing(outer.append):
        first = cluster.run(flows=[ping])
        with pktsim.observing(inner.append):
            second = cluster.run(flows=[ping])
        third = cluster.run(flows=[ping])
    cluster.run(flows=[ping])  # outside every block: nobody is told
    assert outer == [first, second, third] and inner == [second]
    assert second.flows[0].status == "ok"
