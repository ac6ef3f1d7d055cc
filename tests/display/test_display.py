"""pktsim.display: the reprs render, the tables have their columns, stepping steps.

The picture is checked the way a reader would look at it: a PNG of sane size, and no two
boxes of the demo cluster overlapping (their rendered extents are compared pairwise).
"""

from __future__ import annotations

import struct
import subprocess
import sys
from itertools import combinations

import pytest

import pktsim
from pktsim.display import FrameView, NodeTables, SimStep, Table, TopologyView, TraceView
from pktsim.display.tables import CONNTRACK, FDB, IPTABLES, NEIGHBOURS, ROUTES
from pktsim.model.objects import Flow

NETWORKS = ("routes", "vxlan", "ipip", "calico")
BIG_PING = Flow("big-ping", "default/client", "10.244.1.2", protocol="icmp",
                payload=b"x" * 1472, start_ns=10**9)


@pytest.fixture(scope="module")
def result() -> pktsim.Result:
    return pktsim.demo_cluster().run()


@pytest.fixture(scope="module")
def vxlan() -> pktsim.Result:
    cluster = pktsim.demo_cluster("vxlan")
    flows = [f for f in cluster.flows if f.name == "pod-to-pod-across-nodes"] + [BIG_PING]
    return cluster.run(flows=flows)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# -- traces ---------------------------------------------------------------------------------
def test_trace_html_has_the_hops_with_nat_highlighted(result: pktsim.Result) -> None:
    view = result.trace("pod-to-service")
    assert isinstance(view, TraceView)
    html = view._repr_html_()
    assert html.count("<tr") == len(view) + 1  # header + one row per event
    assert 'class="pktsim-nat"' in html and "kube-proxy DNAT 10.96.45.12:80" in html
    assert "background:#ffd54f" in html  # the address the DNAT changed
    first = view.follow()
    assert first.column("event")[0] == "tx" and first.column("host")[0] == "default/client"
    dnat = first.column("nat")
    assert any(n.startswith("dst 10.96.45.12:80 -> ") for n in dnat)
    assert "dst" in {col for (_, col) in first.cells}  # the hop after the DNAT


def test_drops_are_red_in_html_and_marked_in_text(vxlan: pktsim.Result) -> None:
    drops = vxlan.trace("big-ping").drops()
    assert len(drops) == 1 and drops.column("drop") == ["FRAG_NEEDED"]
    html = drops._repr_html_()
    assert 'class="pktsim-drop"' in html and "color:#b00020" in html
    assert any(line.startswith("! ") for line in str(drops).splitlines())


def test_trace_dataframe_has_the_documented_columns(result: pktsim.Result) -> None:
    pd = pytest.importorskip("pandas")
    df = result.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(TraceView.COLUMNS) == [
        "t_ms", "flow", "packet", "frame", "host", "iface", "event", "src", "dst", "nat",
        "drop", "summary"]
    assert len(df) == len(result.events)
    assert set(df.flow) == {f.flow for f in result.flows}
    nat = df[df.event == "nat"]
    assert (nat.nat.str.contains(" -> ")).all()


def test_trace_text_and_filters(result: pktsim.Result) -> None:
    view = result.trace("dns-service-discovery")
    queries = view.only("tx", host="default/client").grep("DNS")
    assert len(queries) >= 2 and all(e == "tx" for e in queries.column("event"))
    assert "A? web.shop.default.svc.cluster.local." in str(queries)
    assert view.packets()[0] == view.events[0].packet
    assert str(view).startswith("dns-service-discovery: http to http://web.shop/")


def test_result_html_lists_every_flow(result: pktsim.Result) -> None:
    html = result._repr_html_()
    for f in result.flows:
        assert f.flow in html
    assert html.count("<details>") == len(result.flows)
    assert "8 flows (8 ok)" in repr(result)


# -- frames ---------------------------------------------------------------------------------
def test_frame_is_dissected_by_scapy(vxlan: pktsim.Result) -> None:
    assert vxlan.memory is not None
    wire = next(f for f in vxlan.memory.frames
                if f.iface.if_name == "node-1:eth0" and len(f.data) > 100)
    view = vxlan.frame(wire.number)
    assert isinstance(view, FrameView)
    assert view.layers() == ["Ether", "IP", "UDP", "VXLAN", "Ether", "IP", "TCP"]
    text = str(view)
    assert text.startswith(f"frame #{wire.number} on node-1:eth0 (out)")
    assert "###[ VXLAN ]###" in text and "vni       = 0x1" in text
    assert "<pre" in view._repr_html_()
    assert "0000" in view.hexdump()
    with pytest.raises(IndexError):
        vxlan.frame(10**6)


@pytest.mark.parametrize(("network", "device"), [("ipip", "flannel.ipip"),
                                                  ("calico", "tunl0")])
def test_ipip_frames_are_bare_ipv4(network: str, device: str) -> None:
    cluster = pktsim.demo_cluster(network)
    res = cluster.run(flows=[f for f in cluster.flows if f.name == "pod-to-pod-across-nodes"])
    assert res.memory is not None
    tunl0 = next(f for f in res.memory.frames if f.iface.name == device)
    assert res.frame(tunl0.number).layers()[0] == "IP"


# -- tables ---------------------------------------------------------------------------------
def test_node_tables(result: pktsim.Result) -> None:
    pytest.importorskip("pandas")
    tables = result.tables("node-1")
    assert isinstance(tables, NodeTables)
    for table, columns in ((tables.fdb, FDB), (tables.routes, ROUTES),
                           (tables.neighbours, NEIGHBOURS), (tables.iptables, IPTABLES),
                           (tables.conntrack, CONNTRACK)):
        assert list(table.to_dataframe().columns) == list(columns)
        assert table.title.endswith("node-1")
    assert ("72:1a:5b:5b:d7:c2", "cbr0", "cbr0", "permanent", 0.0, "") in tables.fdb.rows
    assert tables.routes.rows[0][:3] == ("default", "172.18.0.1", "eth0")
    assert "DNAT" in tables.conntrack.column("nat")
    rules = tables.service_rules("shop/web")
    assert rules.column("chain")[0] == "KUBE-SERVICES"
    assert sum(t.startswith("DNAT --to-destination") for t in rules.column("target")) == 3
    html = tables._repr_html_()
    assert "<details>" in html and "bridge fdb on node-1" in html
    assert "conntrack 6" in repr(tables)


def test_pod_tables_say_what_a_pod_lacks(result: pktsim.Result) -> None:
    tables = result.tables("default/client")
    assert tables.routes.rows[0][:2] == ("default", "10.244.0.1")
    assert not tables.fdb.rows and "no bridge" in str(tables.fdb)
    assert "no netfilter" in str(tables.iptables)


def test_table_grep_head_and_text() -> None:
    table = Table("t", ("a", "b"), [(1, "x"), (2, "y z"), (3, "z")], marks={2: "drop"})
    assert table.grep("z").rows == [(2, "y z"), (3, "z")]
    assert table.grep("z").marks == {1: "drop"}
    assert len(table.head(2)) == 2
    assert str(table).splitlines()[-1].startswith("! 3")


# -- the picture ----------------------------------------------------------------------------
@pytest.mark.parametrize("network", NETWORKS)
def test_topology_png_is_readable(network: str) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    cluster = pktsim.demo_cluster(network)
    view = cluster.diagram()
    assert isinstance(view, TopologyView)
    width, height = png_size(cluster._repr_png_())
    assert 1000 <= width <= 3000 and 500 <= height <= 2000
    fig = view.figure()
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in ax.texts
             if t.get_bbox_patch() is not None]
    assert len(boxes) == view.graph.number_of_nodes()
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b), f"boxes overlap: {a} {b}"
    inside = fig.bbox
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 and inside.y0 <= b.y0
               and b.y1 <= inside.y1 for b in boxes)


def test_topology_text_names_every_pod_and_service(result: pktsim.Result) -> None:
    text = str(result.diagram())
    for info in result.topology.model.pods.values():
        assert str(info.ip) in text and info.veth in text
    for key in result.topology.model.services:
        assert key in text


def test_path_of_a_service_flow(result: pktsim.Result) -> None:
    view = result.diagram("pod-to-service")
    nat = next(e for e in result.events if e.flow == "pod-to-service" and e.event == "nat")
    backend = nat.nat.new.split(":")[0]
    pod = next(p.key for p in result.topology.model.pods.values() if str(p.ip) == backend)
    assert {"pod:default/client", "svc:shop/web", f"pod:{pod}"} <= set(view.path_nodes)
    assert not any(n.startswith("pod:kube-system") for n in view.path_nodes)  # no ARP floods
    assert frozenset(("svc:shop/web", f"pod:{pod}")) in view.path_edges
    assert "* " in str(view)


def test_path_through_vxlan_uses_the_overlay(vxlan: pktsim.Result) -> None:
    view = vxlan.diagram("pod-to-pod-across-nodes")
    assert {"tun:node-1", "tun:node-2"} <= set(view.path_nodes)
    assert frozenset(("tun:node-1", "tun:node-2")) in view.path_edges


# -- stepping -------------------------------------------------------------------------------
def test_simulation_steps_like_packet_tracer() -> None:
    cluster = pktsim.demo_cluster()
    sim = cluster.simulate(flows=["pod-to-pod-same-node"])
    assert len(sim.tables("node-1").fdb) == 1  # only the bridge's own MAC
    first = sim.step()
    assert isinstance(first, SimStep) and first.t == 10_000_000
    assert first.kinds() == ["send", "arp", "tx"] and first.packet is not None
    second = sim.step()
    assert second is not None and "learn" in second.kinds()
    assert "f2:46:1f:4d:ef:33" in sim.tables("node-1").fdb.column("mac")
    delivered = sim.step_until("deliver")
    assert delivered is not None and "deliver" in delivered.kinds()
    assert "echo request" in str(delivered) and "<table" in delivered._repr_html_()
    assert sim.packet is not None and sim.packet.number == len(sim.memory.frames)
    assert png_size(sim.diagram().png())[0] > 0
    res = sim.finish()
    assert sim.done and sim.step() is None
    again = pktsim.demo_cluster().run(flows=[f for f in cluster.flows
                                             if f.name == "pod-to-pod-same-node"])
    assert res.summary() == again.summary()
    assert [e.summary for e in res.events] == [e.summary for e in again.events]


def test_simulation_can_be_iterated_and_broken() -> None:
    from ipaddress import IPv4Network

    cluster = pktsim.demo_cluster()
    sim = cluster.simulate(flows=["pod-to-pod-across-nodes"])
    sim.topology.node_ns["node-1"].routes.remove(IPv4Network("10.244.1.0/24"))
    steps = list(sim)
    assert steps and steps[-1].index == len(steps)
    res = sim.result
    assert res.flows[0].status != "ok"
    assert any(e.event == "drop" for e in res.events)


# -- without the notebook extra -------------------------------------------------------------
def test_pktsim_works_without_pandas_and_matplotlib() -> None:
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pandas", "matplotlib"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import pktsim
r = pktsim.demo_cluster().run()
assert "kube-proxy DNAT" in str(r.trace("pod-to-service"))
assert "conntrack on node-1" in str(r.tables("node-1"))
assert "shop/web" in str(r.diagram())
try:
    r.to_dataframe()
except ImportError as e:
    assert "pktsim[notebook]" in str(e)
else:
    raise AssertionError("to_dataframe without pandas")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
