"""The scale benchmark (benchmarks/README.md §4): big generated clusters, and the NAT decision.

Each size (100 / 1,000 / 5,000 nodes by default; 10 / 30 with ``--quick``) is a cluster of
``nodes`` nodes, 30 pods a node and 2 Services per 30 pods, written as one ``kind: List`` in
JSON (what ``kubectl get nodes,pods,services -o json`` prints) to a temporary file.  The
pods are snapshot pods: ``spec.nodeName`` set, pod ``p`` on node ``p // 30`` and selected by
Service ``p % services``, so each Service's endpoints are spread over the nodes.

Each size runs in a **fresh subprocess** (so its peak RSS is its own): it times
``pktsim.load(file)`` and ``cluster.build([MemorySink()])`` (load + build seconds), then one
traced flow — a TCP connection from the first pod to the *last* Service's ClusterIP, run with
its trace kept in memory — and reports its peak RSS (``VmHWM``, ``common.peak_rss_kb``).

The NAT figure is the per-packet cost of the nat-table decision for a NEW connection's first
packet — ``evaluate`` of the nat ``OUTPUT`` hook of kube-proxy's rules — for a packet to the
*last* Service's ClusterIP (the far end of ``KUBE-SERVICES``), at 10 and at 10,000 Services.
Both run in this process, side by side; the ratio is the headline figure.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.common import Outcome, median, peak_rss_kb

NAME = "scale"
PODS_PER_NODE = 30
SERVICES_PER_30_PODS = 2
POD_CIDR = "10.128.0.0/9"  # room for 32,768 nodes' /24s (the default /16 has 256)
NODE_CIDR = "172.16.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
SERVICES_PER_NAMESPACE = 100
TARGETS: dict[str, float] = {
    "load_build_s": 60.0,  # at 5,000 nodes / 150,000 pods / 10,000 services
    "peak_rss_mb": 8_000.0,
    "flow_s": 1.0,
    "nat_ratio": 1.5,  # NAT decision at 10,000 services / at 10
}


@dataclass(frozen=True)
class ScaleConfig:
    nodes: tuple[int, ...] = (100, 1_000, 5_000)
    nat_services: tuple[int, int] = (10, 10_000)
    nat_repeats: int = 2_000  # NAT decisions timed per size (the median is reported)
    workdir: Path | None = None
    profile: bool = False  # cProfile of load + build at the largest size, top 20 by own time

    @classmethod
    def quick(cls) -> ScaleConfig:
        return cls(nodes=(10, 30), nat_services=(10, 200), nat_repeats=300)


# -- the generated cluster ---------------------------------------------------------------------

def sizes(nodes: int) -> tuple[int, int]:
    """(pods, services) of a ``nodes``-node cluster."""
    pods = nodes * PODS_PER_NODE
    return pods, max(1, pods * SERVICES_PER_30_PODS // 30)


def _namespace(service: int) -> str:
    """Services come 100 to a namespace; a pod lives in the namespace of its Service."""
    return f"team-{service // SERVICES_PER_NAMESPACE}"


def cluster_objects(nodes: int, services: int | None = None,
                    pods: int | None = None) -> dict[str, Any]:
    """The cluster as one ``kind: List`` (the pktsim Cluster document first); ``services``
    and ``pods`` override the sizes of benchmarks/README.md §4 (pods fill nodes 30 at a time)."""
    default_pods, n_services = sizes(nodes)
    n_services = services if services is not None else n_services
    pods = pods if pods is not None else default_pods
    items: list[dict[str, Any]] = [{
        "apiVersion": "pktsim/v1alpha1", "kind": "Cluster",
        "metadata": {"name": f"scale-{nodes}"},
        "spec": {"nodes": nodes, "podCIDR": POD_CIDR, "nodeCIDR": NODE_CIDR,
                 "serviceCIDR": SERVICE_CIDR, "seed": 1}}]
    for s in range(n_services):
        items.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc-{s}", "namespace": _namespace(s)},
            "spec": {"type": "ClusterIP", "selector": {"app": f"svc-{s}"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                "targetPort": 8080}]}})
    for p in range(pods):
        s = p % n_services
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{p}", "namespace": _namespace(s),
                         "labels": {"app": f"svc-{s}"}},
            "spec": {"nodeName": f"node-{p // PODS_PER_NODE + 1}",
                     "containers": [{"name": "web", "image": "nginx",
                                     "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running"}})
    return {"apiVersion": "v1", "kind": "List", "items": items}


def write_cluster(path: Path, nodes: int, services: int | None = None,
                  pods: int | None = None) -> tuple[int, int]:
    """Write the ``nodes``-node cluster to ``path`` as JSON; its (pods, services)."""
    doc = cluster_objects(nodes, services, pods)
    path.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    kinds = [item["kind"] for item in doc["items"]]
    return kinds.count("Pod"), kinds.count("Service")


# -- one size, measured in a fresh process -----------------------------------------------------

def last_service(cluster: Any) -> Any:
    """The ServiceInfo of the last generated Service (the far end of ``KUBE-SERVICES``)."""
    names = [k for k in cluster.model.services if k.rpartition("/")[2].startswith("svc-")]
    return cluster.model.services[max(names, key=lambda k: int(k.rpartition("-")[2]))]


def measure_size(path: Path, profile: bool = False) -> dict[str, Any]:
    """Load + build ``path`` and run one traced flow; called in a fresh process."""
    import pktsim
    from pktsim.build.flows import start_flows
    from pktsim.model.objects import Flow
    from pktsim.sinks.trace import MemorySink

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    start = time.perf_counter()
    cluster = pktsim.load(path)
    loaded = time.perf_counter()
    memory = MemorySink()
    topo = cluster.build([memory])
    built = time.perf_counter()
    if prof is not None:
        prof.disable()
    svc = last_service(cluster)
    client = next(iter(cluster.model.pods.values()))
    flow = Flow("probe", client.key, f"{svc.cluster_ip}:{svc.ports[0].spec.port}")
    flow_start = time.perf_counter()
    results = start_flows(topo, [flow])
    topo.driver.run()
    flow_s = time.perf_counter() - flow_start
    figures = {
        "nodes": len(cluster.model.nodes), "pods": len(cluster.model.pods),
        "services": len(cluster.model.services),
        "load_s": loaded - start, "build_s": built - loaded, "load_build_s": built - start,
        "flow_s": flow_s, "flow": results[0].line(), "flow_status": results[0].status,
        "flow_events": len([e for e in memory.events if e.flow == "probe"]),
        "peak_rss_mb": peak_rss_kb()[0] / 1024,  # VmHWM: ru_maxrss has the parent's peak
    }
    if prof is not None:
        import io
        import pstats

        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
        figures["profile"] = buf.getvalue()
    return figures


def measure_in_subprocess(path: Path, profile: bool) -> dict[str, Any]:
    """``measure_size`` in a fresh interpreter, so the peak RSS is this size's alone."""
    code = ("import json, sys; from pathlib import Path; from benchmarks.scale import "
            "measure_size; print('RESULT ' + json.dumps(measure_size(Path(sys.argv[1]), "
            "sys.argv[2] == '1')))")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code, str(path), "1" if profile else "0"],
                          cwd=root, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"measuring {path.name} failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    return result


# -- the NAT decision --------------------------------------------------------------------------

def nat_decision(services: int, repeats: int, workdir: Path) -> dict[str, Any]:
    """Median seconds of the nat OUTPUT decision for a NEW packet to the last Service.

    The cluster has one pod per Service (so every Service has an endpoint and a KUBE-SVC
    chain), 30 to a node."""
    import pktsim
    from pktsim.netfilter.engine import evaluate
    from pktsim.netfilter.view import Env, PacketView
    from pktsim.wire.build import PROTO_TCP

    nodes = max(2, -(-services // PODS_PER_NODE))
    path = workdir / f"nat-{services}.json"
    write_cluster(path, nodes, services, pods=services)
    cluster = pktsim.load(path)
    topo = cluster.build()
    svc = last_service(cluster)
    client = next(iter(cluster.model.pods.values()))
    nf = topo.netfilters[client.node]
    table = nf.table("nat")
    env = Env(now=0, rng=random.Random(0), recent=nf.recent)
    src, dst = client.ip.packed, svc.cluster_ip.packed
    port = svc.ports[0].spec.port
    figures: dict[str, Any] = {"services": len(cluster.model.services),
                               "rules": sum(1 for _ in table.rules())}
    for label, indexed in (("seconds", True), ("linear_seconds", False)):
        times: list[float] = []
        for _ in range(repeats if indexed else max(repeats // 20, 5)):
            view = PacketView(src, dst, PROTO_TCP, 40000, port, "", "eth0", ctstate="NEW")
            env.rng.seed(0)  # the same -m statistic draws: the same endpoint both ways
            t = time.perf_counter()
            outcome = evaluate(table, "OUTPUT", view, env, indexed=indexed)
            times.append(time.perf_counter() - t)
        figures[label] = median(times)
        figures["path" if indexed else "linear_path"] = outcome.path_text()
        figures["verdict"] = outcome.verdict
    if figures["path"] != figures["linear_path"]:
        raise RuntimeError(f"indexed and linear walks disagree: {figures['path']} vs "
                           f"{figures['linear_path']}")
    return figures


# -- the benchmark -----------------------------------------------------------------------------

def _say(text: str) -> None:
    print(text, flush=True)


def run(config: ScaleConfig | None = None) -> Outcome:
    cfg = config or ScaleConfig()
    _say(f"scale: sizes {', '.join(f'{n:,}' for n in cfg.nodes)} nodes ({PODS_PER_NODE} pods "
         f"a node, {SERVICES_PER_30_PODS} Services per 30 pods), each in a fresh process; "
         f"NAT decision at {cfg.nat_services[0]:,} vs {cfg.nat_services[1]:,} Services")
    sizes_out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pktsim-scale-", dir=cfg.workdir) as tmp_name:
        tmp = Path(tmp_name)
        for nodes in cfg.nodes:
            path = tmp / f"cluster-{nodes}.json"
            start = time.perf_counter()
            pods, services = write_cluster(path, nodes)
            written = time.perf_counter() - start
            profile = cfg.profile and nodes == max(cfg.nodes)
            got = measure_in_subprocess(path, profile)
            got["file_mb"] = path.stat().st_size / 1e6
            got["generate_s"] = written
            path.unlink()
            if "profile" in got:
                _say(f"scale: cProfile of load + build at {nodes:,} nodes\n{got.pop('profile')}")
            sizes_out.append(got)
            _say(f"  {nodes:,} nodes, {pods:,} pods, {services:,} services: load "
                 f"{got['load_s']:.2f} s + build {got['build_s']:.2f} s = "
                 f"{got['load_build_s']:.2f} s, peak RSS {got['peak_rss_mb']:,.0f} MB, traced "
                 f"flow {got['flow_s']:.3f} s ({got['flow_status']})")
        nat = [nat_decision(n, cfg.nat_repeats, tmp) for n in cfg.nat_services]
    for entry in nat:
        _say(f"  NAT decision at {entry['services']:,} services ({entry['rules']:,} nat rules): "
             f"{entry['seconds'] * 1e6:.1f} µs indexed, {entry['linear_seconds'] * 1e6:.1f} µs "
             f"rule by rule; {entry['path']}")
    return _outcome(cfg, sizes_out, nat)


def _outcome(cfg: ScaleConfig, sizes_out: list[dict[str, Any]],
             nat: list[dict[str, Any]]) -> Outcome:
    small, big = nat
    ratio = big["seconds"] / small["seconds"] if small["seconds"] else 0.0
    linear = big["linear_seconds"] / small["linear_seconds"] if small["linear_seconds"] else 0.0
    largest = sizes_out[-1]
    figures: dict[str, Any] = {
        "sizes": [{k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}
                  for s in sizes_out],
        "largest_nodes": largest["nodes"],
        "load_build_s": round(largest["load_build_s"], 3),
        "peak_rss_mb": round(largest["peak_rss_mb"], 1),
        "flow_s": round(largest["flow_s"], 4),
        "nat_services": [small["services"], big["services"]],
        "nat_us": [round(small["seconds"] * 1e6, 3), round(big["seconds"] * 1e6, 3)],
        "nat_linear_us": [round(small["linear_seconds"] * 1e6, 3),
                          round(big["linear_seconds"] * 1e6, 3)],
        "nat_repeats": cfg.nat_repeats,
        "nat_ratio": round(ratio, 3),
        "nat_linear_ratio": round(linear, 3),
        "targets": TARGETS,
    }
    lines = [f"scale: {s['nodes']:,} nodes / {s['pods']:,} pods / {s['services']:,} services: "
             f"load + build {s['load_build_s']:.2f} s, peak RSS {s['peak_rss_mb']:,.0f} MB, "
             f"traced flow {s['flow_s']:.3f} s" for s in sizes_out]
    lines.append(
        f"scale: NAT decision {small['seconds'] * 1e6:.1f} µs at {small['services']:,} services, "
        f"{big['seconds'] * 1e6:.1f} µs at {big['services']:,}: ratio {ratio:.2f}x (rule by "
        f"rule: {linear:.1f}x) (targets: <= {TARGETS['load_build_s']:.0f} s, "
        f"<= {TARGETS['peak_rss_mb']:,.0f} MB, <= {TARGETS['flow_s']:.0f} s at 5,000 nodes; "
        f"NAT <= {TARGETS['nat_ratio']}x)")
    return Outcome(NAME, figures, lines)


def configure(quick: bool, nodes: Sequence[int] | None = None,
              **overrides: Any) -> ScaleConfig:
    """The quick or full configuration with ``overrides`` (``None`` values ignored)."""
    base = ScaleConfig.quick() if quick else ScaleConfig()
    if nodes:
        base = replace(base, nodes=tuple(nodes))
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
