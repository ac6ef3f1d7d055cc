"""Every run is bounded, and ``check`` accepts exactly what ``run`` can run (issue 16):
the budget (virtual-time horizon, event count), iputils' 16-bit echo sequence, the pcap
clock's end, flows naming what the cluster lacks."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

import pktsim
from pktsim.api import demo_text
from pktsim.build.budget import Budget
from pktsim.cli import main
from pktsim.devices.apps import PingApp

DEMO = str(Path(pktsim.__file__).parent / "data" / "demo.yaml")
TRAFFIC = "apiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n  flows:\n"
ENDLESS = TRAFFIC + (
    "  - {name: million-pings, from: default/client, to: default/app, protocol: icmp,"
    " count: 1000000}\n"
    "  - {name: black-hole, from: default/client, to: '10.244.0.250:9', protocol: udp,"
    " count: 1000000}\n")


def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, traffic: str,
        *flags: str) -> tuple[int, str]:
    (tmp_path / "traffic.yaml").write_text(traffic)
    extra = ["--out", str(tmp_path / "out"), "--quiet"] if command == "run" else []
    status = main([command, DEMO, str(tmp_path / "traffic.yaml"), *extra, *flags])
    return status, capsys.readouterr().err


def test_a_million_pings_stop_at_the_horizon_naming_the_flows(tmp_path, capsys):
    status, err = cli(tmp_path, capsys, "run", ENDLESS, "--horizon", "10m")
    assert status == 3
    assert err == ("pktsim: run stopped at its budget, virtual time 10m (--horizon); still "
                   "running: million-pings (601 sent, 600 answered), black-hole (601 sent, "
                   "0 answered); raise it to run further\n")
    assert {"capture.pcapng", "trace.txt", "nodes"} <= set(os.listdir(tmp_path / "out"))


def test_the_event_budget_stops_a_run_too(tmp_path, capsys):
    status, err = cli(tmp_path, capsys, "run", ENDLESS, "--max-events", "5000")
    assert status == 3 and "5,000 events (--max-events)" in err and "million-pings" in err


def test_a_bad_budget_flag_is_exit_2(tmp_path, capsys):
    status, err = cli(tmp_path, capsys, "run", ENDLESS, "--horizon", "forever")
    assert status == 2 and "--horizon: 'forever' is not a duration" in err


def test_the_python_run_reports_its_budget():
    cluster = pktsim.load(demo_text(), ENDLESS)
    result = cluster.run(budget=Budget(horizon_ns=5 * 10**9, max_events=None))
    assert result.stopped.startswith("run stopped at its budget, virtual time 5s")
    assert "stopped by the run budget" in result.flows[-1].line()


def test_the_echo_sequence_wraps_at_65536_as_iputils_does(monkeypatch):
    start = PingApp.start

    def late_start(self: PingApp, *args: object) -> None:
        self.seq, self.count = 65533, 65536  # the last 3 of 65,536: as if 65,533 had gone
        start(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PingApp, "start", late_start)
    flow = pktsim.flow("default/client", "default/app", protocol="icmp", count=3)
    result = pktsim.demo_cluster().run(flows=[flow])
    assert result.flows[0].line() == "flow: icmp to default/app: ok (3/3 answered)"
    requests = [f.data for f in result.memory.frames if f.iface.if_name ==
                "default/client:eth0" and "echo request" in f.comment]
    assert [struct.unpack_from("!H", d, 40)[0] for d in requests] == [65534, 65535, 0]


def test_a_start_past_the_pcap_clock_is_refused_by_check_and_run(tmp_path, capsys):
    late = TRAFFIC + ("  - {name: late, from: default/client, to: default/app, "
                      "protocol: icmp, start: 9000000000000}\n")
    for command in ("check", "run"):
        status, err = cli(tmp_path, capsys, command, late)
        assert status == 2
        assert "spec.flows[0].start: 9000000000000 starts after the last time a capture " \
               "can stamp" in err


def test_a_start_time_before_1970_is_refused(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("apiVersion: pktsim/v1alpha1\nkind: Cluster\n"
                                     "spec: {startTime: '1969-12-31T23:59:59Z'}\n")
    status = main(["check", str(tmp_path / "c.yaml")])
    err = capsys.readouterr().err
    assert status == 2 and "spec.startTime: -1 is outside what a capture can stamp" in err


@pytest.mark.parametrize("flow, field", [
    ("{name: a, from: default/nope, to: default/app}", "spec.flows[0].from"),
    ("{name: a, from: default/client, to: default/nada}", "spec.flows[0].to"),
    ("{name: a, from: default/client, to: 'node:nine:80'}", "spec.flows[0].to"),
    ("{name: a, frame: '00', interface: 'node-1:eth9'}", "spec.flows[0].interface"),
])
def test_check_refuses_what_run_refuses_naming_the_field(tmp_path, capsys, flow, field):
    results = [cli(tmp_path, capsys, command, TRAFFIC + f"  - {flow}\n")
               for command in ("check", "run")]
    assert [status for status, _ in results] == [2, 2]
    assert results[0][1] == results[1][1]
    assert f"traffic.yaml: document 1 (Traffic): {field}:" in results[0][1]
