"""Kernel reference harness: build a Kubernetes-like node out of network namespaces,
drive traffic with the real Linux stack, capture every interface with tcpdump and
return the raw frames so pktsim's output can be compared with what Linux puts on
the wire.

Safety: everything (interfaces, addresses, routes, processes' sockets) lives in
namespaces created here, named ``pktk-<pid>-<random>-...``; the root namespace is
never touched and the namespaces are always deleted (``KernelNode.__exit__`` runs
on errors too).

Topology (the "node" is itself a namespace)::

    node ns:  cbr0 (Linux bridge, 10.244.0.1/24, MTU 1500, defaults)
                ├── vethXXXXXXXX  (host end, hairpin on)  <-> pod ns A: eth0 10.244.0.2/24
                └── vethYYYYYYYY  (host end, hairpin on)  <-> pod ns B: eth0 10.244.0.3/24
    every pod ns: lo up, eth0, default via 10.244.0.1 dev eth0
    IPv6 disabled in every namespace (net.ipv6.conf.{all,default}.disable_ipv6=1)

Usage::

    pods = [PodSpec("a", "10.244.0.2", "0a:58:0a:f4:00:02", "veth0000000a", "0a:00:00:00:01:02"),
            PodSpec("b", "10.244.0.3", "0a:58:0a:f4:00:03", "veth0000000b", "0a:00:00:00:01:03")]
    with KernelNode(pods) as node:
        cap = node.scenario(lambda: node.ping("a", "10.244.0.3", count=1))
        cap.frames["a:eth0"]        # list[bytes], raw Ethernet frames in capture order
        cap.pkttypes["a:eth0"]      # "outgoing" / "host" / "broadcast" / ... per frame
        normalize(cap.frames["a:eth0"], node.mac_names(), pkttypes=cap.pkttypes["a:eth0"])

Captures: one ``tcpdump -p`` per interface (Ethernet pcap) plus one
``tcpdump -i any -y LINUX_SLL2`` per namespace, only to learn each frame's packet type
(pcap has no direction field). See docs/kernel-observations.md for what Linux does.

Interface keys: ``"<pod>:eth0"``, ``"<pod>:lo"``, ``"node:<host veth>"``, ``"node:cbr0"``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Capture",
    "KernelNode",
    "PodSpec",
    "kernel_available",
    "normalize",
    "read_pcap",
]

GATEWAY_IP = "10.244.0.1"
PREFIX_LEN = 24
DEFAULT_BRIDGE_MAC = "0a:58:0a:f4:00:01"
SETUP_TIMEOUT = 10.0
# --immediate-mode makes libpcap use a TPACKET_V2 ring of fixed slots of snaplen size:
# with the default snaplen (262144) and buffer (2 MiB) that is only 8 slots and a burst
# of 9+ frames is dropped ("packets dropped by kernel"). 65600 covers a 64 KiB GSO
# frame on lo plus headers; 8 MiB gives ~120 slots.
_SNAP = ("-s", "65600", "-B", "8192")
TRAFFIC_TIMEOUT = 20.0


# --------------------------------------------------------------------------- utils


def kernel_available() -> str | None:
    """Return None if the harness can run here, else a human readable skip reason."""
    if os.geteuid() != 0:
        return "kernel harness needs root (network namespaces, tcpdump)"
    if shutil.which("ip") is None:
        return "needs `ip` from the Debian package iproute2 (apt-get install iproute2)"
    if shutil.which("tcpdump") is None:
        return "needs tcpdump (Debian package tcpdump: apt-get install tcpdump)"
    if shutil.which("ping") is None:
        return "needs ping (Debian package iputils-ping)"
    if shutil.which("bridge") is None:
        return "needs `bridge` from the Debian package iproute2"
    if shutil.which("ss") is None:
        return "needs ss from the Debian package iproute2"
    return None


def _run(argv: list[str], *, check: bool = True, timeout: float = 10.0) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(argv)}\n{p.stderr}")
    return p.stdout


class _LineReader:
    """Non-blocking line reader over a subprocess pipe (bytes)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.buf = b""
        self.lines: list[str] = []
        os.set_blocking(stream.fileno(), False)

    def _pump(self, timeout: float) -> bool:
        sel = selectors.DefaultSelector()
        sel.register(self.stream, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return True
        finally:
            sel.close()
        try:
            chunk = os.read(self.stream.fileno(), 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append(line.decode(errors="replace"))
        return True

    def wait_for(self, needle: str, timeout: float, proc: subprocess.Popen[bytes]) -> str:
        """Block until a line containing ``needle`` arrives; return it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if needle in line:
                    return line
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out waiting for {needle!r}; got {self.lines!r}")
            alive = self._pump(min(left, 0.5))
            if not alive and proc.poll() is not None and needle not in "".join(self.lines[seen:]):
                # drain and re-check once more
                for line in self.lines[seen:]:
                    if needle in line:
                        return line
                raise RuntimeError(
                    f"process exited ({proc.returncode}) before {needle!r}: {self.lines!r}"
                )

    def drain(self) -> list[str]:
        while self._pump(0):
            if not self.buf and not _readable(self.stream):
                break
        if self.buf:
            self.lines.append(self.buf.decode(errors="replace"))
            self.buf = b""
        return self.lines


def _readable(stream: Any) -> bool:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        return bool(sel.select(0))
    finally:
        sel.close()


# --------------------------------------------------------------------------- pcap


def read_pcap(path: str, *, tolerant: bool = False) -> list[tuple[int, bytes]]:
    """Read a classic pcap file -> [(timestamp_ns, frame_bytes)].

    Handles µs and ns magic in both byte orders. With ``tolerant`` a truncated last
    record (file still being written) is ignored instead of raising.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        if tolerant:
            return []
        raise ValueError(f"{path}: no pcap header")
    magic = data[:4]
    table = {
        b"\xd4\xc3\xb2\xa1": ("<", 1000),
        b"\xa1\xb2\xc3\xd4": (">", 1000),
        b"\x4d\x3c\xb2\xa1": ("<", 1),
        b"\xa1\xb2\x3c\x4d": (">", 1),
    }
    if magic not in table:
        raise ValueError(f"{path}: not a pcap file (magic {magic.hex()})")
    endian, mult = table[magic]
    out: list[tuple[int, bytes]] = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        if off + 16 + incl > len(data):
            if tolerant:
                break
            raise ValueError(f"{path}: truncated record at {off}")
        out.append((sec * 1_000_000_000 + frac * mult, data[off + 16 : off + 16 + incl]))
        off += 16 + incl
    if off != len(data) and not tolerant:
        raise ValueError(f"{path}: {len(data) - off} trailing bytes")
    return out


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class PodSpec:
    """One pod: logical name, eth0 IPv4, eth0 MAC, host-side veth name and MAC."""

    name: str
    ip: str
    mac: str
    veth: str
    veth_mac: str | None = None


@dataclass
class _Tcpdump:
    key: str
    ns: str
    ifname: str
    path: str
    proc: subprocess.Popen[bytes]
    err: _LineReader
    stats_lines: list[str] = field(default_factory=list)


PKTTYPES = {0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing"}


@dataclass
class Capture:
    """Result of one capture: per-interface frames in capture order.

    ``records[key]`` = [(timestamp_ns, frame)], ``pkttypes[key]`` = the Linux packet
    type of each frame (from a companion ``-i any -y LINUX_SLL2`` capture; pcap files
    themselves carry no direction): "outgoing" = sent by this interface, anything else
    ("host", "broadcast", "multicast", "otherhost") = received by it.
    """

    records: dict[str, list[tuple[int, bytes]]]
    pkttypes: dict[str, list[str]]
    tcpdump_stats: dict[str, list[str]]
    counter_deltas: dict[str, int]
    result: Any = None

    @property
    def directions(self) -> dict[str, list[str]]:
        return {k: ["out" if t == "outgoing" else "in" for t in v]
                for k, v in self.pkttypes.items()}

    @property
    def frames(self) -> dict[str, list[bytes]]:
        return {k: [b for _, b in v] for k, v in self.records.items()}

    def merged(self) -> list[tuple[int, str, bytes]]:
        """All interfaces merged by capture timestamp: [(ts_ns, key, frame)]."""
        allr = [(ts, k, b) for k, v in self.records.items() for ts, b in v]
        return sorted(allr, key=lambda r: r[0])


# --------------------------------------------------------------------------- node

_SERVER = r"""
import socket, sys
port = int(sys.argv[1]); body = sys.argv[2].encode()
bind = sys.argv[3]
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((bind, port)); ls.listen(8)
print("ready", flush=True)
c, peer = ls.accept()
req = b""
while b"\r\n\r\n" not in req:
    d = c.recv(65536)
    if not d:
        break
    req += d
resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body)
c.sendall(resp)
while True:            # wait for the client's FIN (EOF), then close
    d = c.recv(65536)
    if not d:
        break
c.close(); ls.close()
print("done", len(req), flush=True)
"""

_CLIENT = r"""
import socket, sys
host = sys.argv[1]; port = int(sys.argv[2]); req = sys.argv[3].encode("latin-1")
s = socket.create_connection((host, port), timeout=10)
s.sendall(req)
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(65536)
    if not d:
        raise SystemExit("EOF in headers")
    buf += d
head, _, body = buf.partition(b"\r\n\r\n")
n = 0
for line in head.split(b"\r\n")[1:]:
    k, _, v = line.partition(b":")
    if k.strip().lower() == b"content-length":
        n = int(v)
while len(body) < n:
    d = s.recv(65536)
    if not d:
        raise SystemExit("EOF in body")
    body += d
s.close()              # client closes first, after the full response
print("done", head.split(b"\r\n")[0].decode(), len(body), flush=True)
"""

_CLIENT_REFUSED = r"""
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except ConnectionRefusedError as e:
    print("refused", errno.errorcode[e.errno], flush=True)
    raise SystemExit(0)
raise SystemExit("connected: expected ECONNREFUSED")
"""


class KernelNode:
    """Context manager building the node + pods out of fresh ``pktk-`` namespaces."""

    def __init__(
        self,
        pods: Iterable[PodSpec],
        *,
        bridge: str = "cbr0",
        gateway_ip: str = GATEWAY_IP,
        prefix_len: int = PREFIX_LEN,
        bridge_mac: str = DEFAULT_BRIDGE_MAC,
        mtu: int = 1500,
        hairpin: bool = True,
        bridge_promisc: bool = False,
        capture_lo: bool = True,
        settle_igmp: bool = True,
        disable_ipv6: bool = True,
        workdir: str | None = None,
    ) -> None:
        self.pods = list(pods)
        names = [p.name for p in self.pods]
        if len(set(names)) != len(names):
            raise ValueError("pod names must be unique")
        for p in self.pods:
            if len(p.veth) > 15:
                raise ValueError(f"veth name too long: {p.veth}")
            ipaddress.IPv4Address(p.ip)
        self.bridge = bridge
        self.gateway_ip = gateway_ip
        self.prefix_len = prefix_len
        self.bridge_mac = bridge_mac
        self.mtu = mtu
        self.hairpin = hairpin
        self.bridge_promisc = bridge_promisc
        self.capture_lo = capture_lo
        self.settle_igmp = settle_igmp
        self.disable_ipv6 = disable_ipv6
        tag = f"pktk-{os.getpid()}-{secrets.token_hex(2)}"
        self.node_ns = f"{tag}-node"
        self.pod_ns = {p.name: f"{tag}-{p.name}" for p in self.pods}
        self._created: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="pktk-")
        self.setup_counters: dict[str, dict[str, int]] = {}
        self._cap_seq = 0
        self._flush_problem = ""

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> KernelNode:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                with contextlib.suppress(Exception):
                    p.wait(timeout=5)
        self._procs.clear()
        errors = []
        for ns in reversed(self._created):
            r = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
            if r.returncode != 0:
                errors.append(f"{ns}: {r.stderr.strip()}")
        self._created.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise RuntimeError("failed to delete namespaces: " + "; ".join(errors))

    def ns_of(self, who: str) -> str:
        return self.node_ns if who == "node" else self.pod_ns[who]

    def pod(self, name: str) -> PodSpec:
        return next(p for p in self.pods if p.name == name)

    def ip(self, ns: str, *args: str, check: bool = True) -> str:
        return _run(["ip", "-n", ns, *args], check=check)

    def exec(self, who: str, argv: list[str], *, check: bool = True, timeout: float = 10.0) -> str:
        return _run(["ip", "netns", "exec", self.ns_of(who), *argv], check=check, timeout=timeout)

    def _add_ns(self, ns: str) -> None:
        assert ns.startswith("pktk-")
        _run(["ip", "netns", "add", ns])
        self._created.append(ns)
        # pin the receive buffer limits pktsim models (wscale 10, 64240/65160 initial
        # windows): tcp_rmem is per namespace, so the host's own setting cannot leak in
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
              "net.ipv4.tcp_rmem=4096 131072 33554432"])
        # IPv6 off before any interface exists/comes up: no RS, no MLD, no DAD noise.
        if not self.disable_ipv6:
            return
        _run(
            [
                "ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]
        )

    def _setup(self) -> None:
        node = self.node_ns
        self._add_ns(node)
        _run(["ip", "netns", "exec", node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        self.ip(node, "link", "set", "lo", "up")
        self.ip(node, "link", "add", self.bridge, "type", "bridge")
        self.ip(node, "link", "set", self.bridge, "address", self.bridge_mac, "mtu", str(self.mtu))
        self.ip(node, "addr", "add", f"{self.gateway_ip}/{self.prefix_len}", "dev", self.bridge)
        if self.bridge_promisc:
            self.ip(node, "link", "set", self.bridge, "promisc", "on")
        for i, p in enumerate(self.pods):
            pns = self.pod_ns[p.name]
            self._add_ns(pns)
            self.ip(pns, "link", "set", "lo", "up")
            self.ip(node, "link", "add", p.veth, "type", "veth", "peer", "name", "eth0",
                    "netns", pns)
            vmac = p.veth_mac or f"0a:00:00:00:01:{i + 2:02x}"
            self.ip(node, "link", "set", p.veth, "address", vmac, "mtu", str(self.mtu))
            self.ip(node, "link", "set", p.veth, "master", self.bridge)
            if self.hairpin:
                self.ip(node, "link", "set", "dev", p.veth, "type", "bridge_slave", "hairpin", "on")
            self.ip(node, "link", "set", p.veth, "up")
            self.ip(pns, "link", "set", "eth0", "address", p.mac, "mtu", str(self.mtu))
            self.ip(pns, "addr", "add", f"{p.ip}/{self.prefix_len}", "dev", "eth0")
            self.ip(pns, "link", "set", "eth0", "up")
            self.ip(pns, "route", "add", "default", "via", self.gateway_ip, "dev", "eth0")
        # cbr0 goes up last, once its ports exist, so the bridge has carrier when it
        # joins 224.0.0.106 (multicast snooping) and its IGMP reports really go out.
        self.ip(node, "link", "set", self.bridge, "up")
        self._wait_ready()
        if self.settle_igmp:
            self._wait_bridge_igmp()
        self.setup_counters = self.counters()

    def _wait_ready(self) -> None:
        """Bounded poll: every link operationally up and every bridge port forwarding."""
        deadline = time.monotonic() + SETUP_TIMEOUT
        while True:
            ok = True
            for p in self.pods:
                if self._operstate(self.pod_ns[p.name], "eth0") != "UP":
                    ok = False
                if self._operstate(self.node_ns, p.veth) != "UP":
                    ok = False
            if self._operstate(self.node_ns, self.bridge) != "UP":
                ok = False
            if ok:
                states = json.loads(_run(["bridge", "-n", self.node_ns, "-j", "link", "show"]))
                fwd = {s["ifname"]: s.get("state") for s in states}
                ok = all(fwd.get(p.veth) == "forwarding" for p in self.pods)
            if ok:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("links did not come up")
            time.sleep(0.02)

    def _wait_bridge_igmp(self, timeout: float = 3.0) -> None:
        """cbr0 (multicast snooping on by default) joins 224.0.0.106 when it comes up
        and sends robustness(2) unsolicited IGMPv3 reports, the 2nd after a random
        delay <= 1 s. A real node is long past that: wait for both (bounded poll)."""
        deadline = time.monotonic() + timeout
        key = f"node:{self.bridge}"
        while self.counters()[key]["tx"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)

    def _operstate(self, ns: str, ifname: str) -> str:
        info = json.loads(self.ip(ns, "-j", "link", "show", "dev", ifname))
        return str(info[0].get("operstate"))

    # ---------------------------------------------------------------- state
    def interfaces(self) -> dict[str, tuple[str, str]]:
        """key -> (netns, ifname) for every captured interface."""
        out: dict[str, tuple[str, str]] = {}
        for p in self.pods:
            out[f"{p.name}:eth0"] = (self.pod_ns[p.name], "eth0")
            if self.capture_lo:
                out[f"{p.name}:lo"] = (self.pod_ns[p.name], "lo")
        for p in self.pods:
            out[f"node:{p.veth}"] = (self.node_ns, p.veth)
        out[f"node:{self.bridge}"] = (self.node_ns, self.bridge)
        return out

    def iface_macs(self) -> dict[str, str]:
        """key -> MAC of that interface (for direction inference)."""
        out = {}
        for i, p in enumerate(self.pods):
            out[f"{p.name}:eth0"] = p.mac.lower()
            out[f"{p.name}:lo"] = "00:00:00:00:00:00"
            out[f"node:{p.veth}"] = (p.veth_mac or f"0a:00:00:00:01:{i + 2:02x}").lower()
        out[f"node:{self.bridge}"] = self.bridge_mac.lower()
        return out

    def mac_names(self) -> dict[str, str]:
        """MAC -> symbolic name, for ``normalize``."""
        names = {"ff:ff:ff:ff:ff:ff": "broadcast", "00:00:00:00:00:00": "zero",
                 self.bridge_mac.lower(): self.bridge}
        for i, p in enumerate(self.pods):
            names[p.mac.lower()] = f"{p.name}.eth0"
            names[(p.veth_mac or f"0a:00:00:00:01:{i + 2:02x}").lower()] = f"node.{p.veth}"
        return names

    def counters(self) -> dict[str, dict[str, int]]:
        """key -> {rx_packets, tx_packets} from the kernel's link statistics."""
        out: dict[str, dict[str, int]] = {}
        cache: dict[str, dict[str, Any]] = {}
        for key, (ns, ifname) in self.interfaces().items():
            if ns not in cache:
                links = json.loads(self.ip(ns, "-s", "-j", "link", "show"))
                cache[ns] = {ln["ifname"]: ln for ln in links}
            st = cache[ns][ifname]["stats64"]
            out[key] = {"rx": int(st["rx"]["packets"]), "tx": int(st["tx"]["packets"])}
        return out

    def flush_state(self) -> None:
        """Forget neighbours, bridge FDB (dynamic) and TCP metrics, so a scenario
        starts from ARP like a fresh pod would."""
        for ns in [self.node_ns, *self.pod_ns.values()]:
            self.ip(ns, "neigh", "flush", "all")
            self.ip(ns, "tcp_metrics", "flush", "all", check=False)
        self.ip(self.node_ns, "link", "set", "dev", self.bridge, "type", "bridge", "fdb_flush")

    def neighbours(self, who: str) -> list[dict[str, Any]]:
        return json.loads(self.ip(self.ns_of(who), "-j", "neigh", "show"))

    # ---------------------------------------------------------------- capture
    @contextlib.contextmanager
    def capture(self, keys: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Run tcpdump on the interfaces (default: all); yields a dict which, after the
        with-block, holds ``"capture"`` -> :class:`Capture`."""
        ifs = self.interfaces()
        keys = list(keys) if keys is not None else list(ifs)
        self._cap_seq += 1
        dumps: list[_Tcpdump] = []
        holder: dict[str, Any] = {}
        try:
            for key in keys:
                ns, ifname = ifs[key]
                fname = key.replace(":", "_").replace("/", "_")
                path = os.path.join(self.workdir, f"{self._cap_seq:03d}-{fname}.pcap")
                argv = [
                    "ip", "netns", "exec", ns, "tcpdump", "-Z", "root", "-p", "-n", "-U",
                    "--immediate-mode", "--time-stamp-precision=nano", *_SNAP,
                    "-i", ifname, "-w", path,
                ]
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                self._procs.append(proc)
                dumps.append(_Tcpdump(key, ns, ifname, path, proc, _LineReader(proc.stderr)))
            # companion capture per namespace on "any" with SLL2 headers: ifindex +
            # packet type, i.e. the direction the Ethernet pcap cannot record.
            any_dumps: list[_Tcpdump] = []
            for ns in dict.fromkeys(ifs[k][0] for k in keys):
                path = os.path.join(self.workdir, f"{self._cap_seq:03d}-{ns}-any.pcap")
                argv = [
                    "ip", "netns", "exec", ns, "tcpdump", "-Z", "root", "-n", "-U",
                    "--immediate-mode", "--time-stamp-precision=nano", *_SNAP,
                    "-i", "any", "-y", "LINUX_SLL2", "-w", path,
                ]
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                self._procs.append(proc)
                any_dumps.append(_Tcpdump(f"{ns}:any", ns, "any", path, proc,
                                          _LineReader(proc.stderr)))
            dumps += any_dumps
            for d in dumps:  # event: tcpdump says it is capturing
                d.err.wait_for("listening on", 10.0, d.proc)
            eth_dumps = [d for d in dumps if d.ifname != "any"]
            before = self.counters()
            yield holder
            self._flush_problem = ""
            deltas = self._wait_flushed(eth_dumps, any_dumps, before)
            records: dict[str, list[tuple[int, bytes]]] = {}
            stats: dict[str, list[str]] = {}
            for d in dumps:
                d.proc.send_signal(signal.SIGINT)
            for d in dumps:
                d.proc.wait(timeout=10)
                lines = d.err.drain()
                stats[d.key] = [ln for ln in lines if "packets" in ln]
                records[d.key] = read_pcap(d.path)
                n = _stat(stats[d.key], "packets captured")
                drop = _stat(stats[d.key], "packets dropped by kernel")
                if n is not None and n != len(records[d.key]):
                    raise RuntimeError(f"{d.key}: tcpdump captured {n}, file has "
                                       f"{len(records[d.key])}")
                if drop:
                    raise RuntimeError(f"{d.key}: kernel dropped {drop} packets: {stats}")
            if self._flush_problem:
                raise RuntimeError(f"{self._flush_problem}; tcpdump stats {stats}")
            pkttypes = self._match_directions(
                {d.key: records[d.key] for d in eth_dumps}, ifs,
                {d.ns: records[d.key] for d in any_dumps},
            )
            eth_records = {d.key: records[d.key] for d in eth_dumps}
            holder["capture"] = Capture(eth_records, pkttypes, stats, deltas)
        finally:
            for d in dumps:
                if d.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        d.proc.kill()
                    d.proc.wait(timeout=5)
                if d.proc in self._procs:
                    self._procs.remove(d.proc)

    def _match_directions(
        self,
        eth: dict[str, list[tuple[int, bytes]]],
        ifs: dict[str, tuple[str, str]],
        anyrec: dict[str, list[tuple[int, bytes]]],
    ) -> dict[str, list[str]]:
        """Pair every Ethernet-capture frame with the SLL2 record of the same interface
        and the same bytes after the MAC header (first unused one, in order)."""
        ifindex: dict[str, dict[int, str]] = {}
        for ns in anyrec:
            links = json.loads(self.ip(ns, "-j", "link", "show"))
            ifindex[ns] = {int(ln["ifindex"]): ln["ifname"] for ln in links}
        per_if: dict[tuple[str, str], list[tuple[str, bytes, bytes]]] = {}
        for ns, recs in anyrec.items():
            for _ts, b in recs:
                _proto, _r, idx, _hatype, ptype, alen = struct.unpack("!HHIHBB", b[:12])
                name = ifindex[ns].get(idx, f"if{idx}")
                src = b[12 : 12 + min(alen, 8)]
                per_if.setdefault((ns, name), []).append(
                    (PKTTYPES.get(ptype, str(ptype)), b[20:], src)
                )
        out: dict[str, list[str]] = {}
        for key, recs in eth.items():
            cand = per_if.get(ifs[key], [])
            used = [False] * len(cand)
            types = []
            hl = self._l2_len(key)
            for _ts, fr in recs:
                for i, (pt, payload, src) in enumerate(cand):
                    if not used[i] and payload == fr[hl:] and (
                        ifs[key][1] == "lo" or hl == 0 or src == fr[6:12]
                    ):
                        used[i] = True
                        types.append(pt)
                        break
                else:
                    types.append("unknown")
            out[key] = types
        return out

    def _l2_len(self, key: str) -> int:
        """Bytes of link-layer header the interface's pcap frames carry (14: Ethernet;
        a subclass returns 0 for LINKTYPE_RAW devices such as ``tunl0``)."""
        return 14

    def _wait_flushed(self, dumps: list[_Tcpdump], any_dumps: list[_Tcpdump],
                      before: dict[str, dict[str, int]],
                      timeout: float = 5.0) -> dict[str, int]:
        """Bounded poll until every pcap file holds as many frames as the interface's
        kernel counters say passed it (lo: rx only - libpcap hides lo's outgoing copy),
        each namespace's "any" file at least the sum of its interfaces, and the
        counters are stable."""
        deadline = time.monotonic() + timeout
        prev: dict[str, dict[str, int]] | None = None
        while True:
            now = self.counters()
            deltas = {}
            for d in dumps:
                rx = now[d.key]["rx"] - before[d.key]["rx"]
                tx = now[d.key]["tx"] - before[d.key]["tx"]
                deltas[d.key] = rx if d.ifname == "lo" else rx + tx
            have = {d.key: len(read_pcap(d.path, tolerant=True)) for d in dumps}
            for a in any_dumps:
                have[a.key] = len(read_pcap(a.path, tolerant=True))
                deltas[a.key] = sum(deltas[d.key] for d in dumps if d.ns == a.ns)
            if prev == now and all(have[k] >= deltas[k] for k in deltas):
                return {d.key: deltas[d.key] for d in dumps}
            if time.monotonic() > deadline:
                self._flush_problem = f"capture not flushed: files {have}, counters {deltas}"
                return {d.key: deltas[d.key] for d in dumps}
            prev = now
            time.sleep(0.02)

    def scenario(self, traffic: Callable[[], Any], keys: Iterable[str] | None = None,
                 flush: bool = True) -> Capture:
        """flush caches, capture all interfaces, run ``traffic()``, return the capture."""
        if flush:
            self.flush_state()
        with self.capture(keys) as h:
            h["result"] = traffic()
        cap: Capture = h["capture"]
        cap.result = h.get("result")
        return cap

    # ---------------------------------------------------------------- traffic
    def ping(self, src: str, dst_ip: str, count: int = 1, interval: float = 0.2,
             size: int | None = None) -> str:
        argv = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "5"]
        if size is not None:
            argv += ["-s", str(size)]
        return self.exec(src, [*argv, dst_ip], timeout=TRAFFIC_TIMEOUT)

    def tcp_exchange(self, client: str, server: str, dst_ip: str, port: int = 8080,
                     body: str = "hello from pktsim\n",
                     request: str | None = None, bind: str = "0.0.0.0",
                     server_port: int | None = None) -> dict[str, str]:
        """HTTP/1.1 GET over TCP; client closes first after the full response, the
        server closes after EOF. Returns when both sockets are fully closed (client in
        TIME-WAIT, no LAST-ACK left on the server).  ``server_port``: where the server
        listens when it differs from the port the client connects to (a Service's
        targetPort behind its port); default ``port``."""
        if request is None:
            request = (f"GET / HTTP/1.1\r\nHost: {dst_ip}:{port}\r\n"
                       "User-Agent: pktsim-kernel/1\r\nAccept: */*\r\n\r\n")
        listen = port if server_port is None else server_port
        srv = subprocess.Popen(
            ["ip", "netns", "exec", self.ns_of(server), sys.executable, "-c", _SERVER,
             str(listen), body, bind],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._procs.append(srv)
        try:
            out = _LineReader(srv.stdout)
            out.wait_for("ready", 10.0, srv)  # event: server is listening
            cli = self.exec(client, [sys.executable, "-c", _CLIENT, dst_ip, str(port), request],
                            timeout=TRAFFIC_TIMEOUT)
            line = out.wait_for("done", TRAFFIC_TIMEOUT, srv)
            srv.wait(timeout=TRAFFIC_TIMEOUT)
            if srv.returncode != 0:
                err = srv.stderr.read().decode() if srv.stderr else ""
                raise RuntimeError(f"server failed: {err}")
            self._wait_tcp_closed(client, server, port, listen)
            return {"client": cli.strip(), "server": line}
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait(timeout=5)
            self._procs.remove(srv)

    def tcp_refused(self, client: str, dst_ip: str, port: int) -> str:
        """connect() that must fail with ECONNREFUSED (a RST, or an ICMP port/host/net
        unreachable or admin-prohibited error for the SYN); returns the client's line."""
        out = self.exec(client, [sys.executable, "-c", _CLIENT_REFUSED, dst_ip, str(port)],
                        timeout=TRAFFIC_TIMEOUT)
        return out.strip()

    def _wait_tcp_closed(self, client: str, server: str, port: int,
                         server_port: int | None = None) -> None:
        listen = port if server_port is None else server_port
        deadline = time.monotonic() + TRAFFIC_TIMEOUT
        while True:
            c = self.exec(client, ["ss", "-tanH"])
            s = c if server == client else self.exec(server, ["ss", "-tanH"])
            c_tw = any(ln.split()[0] == "TIME-WAIT" and ln.split()[4].endswith(f":{port}")
                       for ln in c.splitlines() if ln.strip())
            s_busy = any(ln.split()[0] != "TIME-WAIT" and ln.split()[3].endswith(f":{listen}")
                         for ln in s.splitlines() if ln.strip())
            if c_tw and not s_busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"TCP not closed: client={c!r} server={s!r}")
            time.sleep(0.01)


def _stat(lines: list[str], what: str) -> int | None:
    for ln in lines:
        if what in ln:
            return int(ln.split()[0])
    return None


# --------------------------------------------------------------------------- normalize

_TCP_FLAGS = "FSRPAUEC"
_ICMP_ERRORS = (3, 4, 5, 11, 12)  # unreachable, source quench, redirect, time exceeded, param
_OPT_NAMES = {0: "EOL", 1: "NOP", 2: "MSS", 3: "WScale", 4: "SAckOK", 5: "SAck",
              8: "Timestamp", 30: "MPTCP", 34: "TFO"}


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _tcp_opts(raw: bytes) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        name = _OPT_NAMES.get(kind, f"kind{kind}")
        if kind == 0:
            out.append((name, None))
            break
        if kind == 1:
            out.append((name, None))
            i += 1
            continue
        if i + 1 >= len(raw):
            break
        ln = raw[i + 1]
        val = raw[i + 2 : i + ln]
        if kind == 2:
            out.append((name, struct.unpack("!H", val)[0]))
        elif kind == 3:
            out.append((name, val[0]))
        else:
            out.append((name, None))  # Timestamp values etc. are dropped (vary per run)
        i += max(ln, 2)
    return out


def normalize(
    frames: Iterable[bytes],
    macs: dict[str, str] | None = None,
    *,
    keep_window: bool = True,
    keep_ip_id: bool = True,
    ephemeral_ports: bool = True,
    pkttypes: Iterable[str] | None = None,
    raw_ip: bool = False,
    vxlan_ports: Iterable[int] = (8472, 4789),
    nat_ips: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Map frames to comparable dicts.

    - MACs -> names via ``macs`` (unknown MACs are kept verbatim)
    - IP id: 0 stays 0; any other value -> "id<n>", n = order of first appearance
      among the non-zero ids of the same source IP
    - TCP seq/ack relative to each direction's ISN (per connection); when NAT makes
      the two directions' addresses differ on one interface (the SYN seen after DNAT,
      the SYN-ACK after un-DNAT), an ack is taken relative to the known ISN closest below
      it (within 2**24) and that pairing is kept for the direction
    - TCP options: (kind name, value) with values kept only for MSS and WScale
    - ICMP echo: id -> order of first appearance ("icmpid<n>"); the first 16 payload
      bytes (iputils' struct timeval) are replaced by zeros
    - ICMP errors (types 3, 4, 5, 11, 12) quoting an IPv4 packet: ``icmp_rest`` = hex of
      the 4 bytes after the checksum (unused / next-hop MTU / gateway), and the quoted
      packet normalized like a frame of its own (``raw_ip``), flattened as
      ``quoted.<key>``; it shares the IP id, port and ISN maps, so the quoted SYN's
      source port reads "eph1" like the SYN's.  Other ICMP: ``icmp_rest`` = hex of
      everything after the checksum.
    - with ``ephemeral_ports`` TCP/UDP ports in Linux' default ip_local_port_range
      (32768-60999) become "eph<n>" by first appearance (they differ every run)
    - checksums are dropped (veth/lo use checksum offload: outgoing TCP checksums
      on the wire tap are partial)
    - ``pkttypes`` (optional, ``Capture.pkttypes[key]``): adds "pkttype" (Linux packet
      type: outgoing/host/broadcast/multicast/otherhost) and "dir" ("out" for outgoing,
      else "in") per frame. Do not infer direction from the source MAC: with hairpin
      on, a pod's own broadcasts come back to it.
    - ``raw_ip``: the frames are bare IPv4 packets (LINKTYPE_RAW, e.g. ``tunl0``): no
      ``eth_*``/``ethertype`` keys.
    - VXLAN (UDP to one of ``vxlan_ports``): the outer UDP source port (a flow hash) ->
      "vxsport<n>" by first appearance plus ``udp_sport_in_range`` (32768-60999);
      ``udp_dport``, ``udp_len``, ``udp_csum_zero`` (the checksum's value is dropped, only
      whether it is 0 is kept), ``vxlan_flags``, ``vxlan_reserved`` (hex of the 4 reserved
      bytes), ``vxlan_vni``; the inner Ethernet frame is normalized recursively (same MAC
      names, same IP id / ISN / ICMP id / port maps) and flattened as ``inner.<key>``.
      IP-in-IP (protocol 4): the inner IPv4 packet likewise as ``inner.<key>``.
      The outer IP id is renamed like any other (per outer source IP).
    - ``nat_ips``: addresses a source NAT maps connections to (MASQUERADE
      ``--random-fully`` draws the port at random in 1024-65535): a TCP/UDP port paired
      with one of them (the source port when the source is one, the destination port when
      the destination is) becomes "natport<n>" by first appearance, before and instead of
      the ephemeral-port renaming.
    """
    macs = {k.lower(): v for k, v in (macs or {}).items()}
    vx_ports = set(vxlan_ports)

    def mname(b: bytes) -> str:
        m = _mac(b)
        return macs.get(m, m)

    ipid_maps: dict[str, dict[int, str]] = {}
    icmpids: dict[int, str] = {}
    ephs: dict[int, str] = {}
    vxsports: dict[int, str] = {}

    nat_set = set(nat_ips)
    natports: dict[tuple[str, int], str] = {}

    def port(n: int, ip: str = "") -> int | str:
        if ip in nat_set:
            return natports.setdefault((ip, n), f"natport{len(natports) + 1}")
        if ephemeral_ports and 32768 <= n <= 60999:
            return ephs.setdefault(n, f"eph{len(ephs) + 1}")
        return n

    isn: dict[tuple[str, int, str, int], int] = {}
    alias: dict[tuple[str, int, str, int], tuple[str, int, str, int]] = {}

    def nat_peer(me: tuple[str, int, str, int], ack: int) -> tuple[str, int, str, int]:
        """The other direction of ``me``'s connection when NAT made the two directions'
        addresses differ where this interface sees them (e.g. cbr0 of a DNATing node sees
        the SYN after DNAT and the SYN-ACK after un-DNAT): the known ISN of another
        direction closest below ``ack`` (at most 2**24), remembered for ``me``."""
        if me in alias:
            return alias[me]
        best = None
        for key, value in isn.items():
            dist = (ack - value) & 0xFFFFFFFF
            if key != me and dist <= 1 << 24 and (best is None or dist < best[0]):
                best = (dist, key)
        if best is None:
            return (me[2], me[3], me[0], me[1])
        alias[me] = best[1]
        return best[1]

    def nested(d: dict[str, Any], inner: dict[str, Any]) -> None:
        for k, v in inner.items():
            d[f"inner.{k}"] = v

    def ipv4(d: dict[str, Any], p: bytes) -> None:
        ihl = (p[0] & 0x0F) * 4
        tos, tot_len, ipid, frag = struct.unpack("!BHHH", p[1:8])
        ttl, proto = p[8], p[9]
        src = str(ipaddress.IPv4Address(p[12:16]))
        dst = str(ipaddress.IPv4Address(p[16:20]))
        if ipid == 0 or not keep_ip_id:
            idv: Any = 0 if keep_ip_id else None
        else:
            mp = ipid_maps.setdefault(src, {})
            idv = mp.setdefault(ipid, f"id{len(mp) + 1}")
        d.update(
            ip_src=src, ip_dst=dst, ip_ttl=ttl, ip_proto=proto, ip_len=tot_len,
            ip_tos=tos, ip_ihl=ihl, ip_df=bool(frag & 0x4000), ip_mf=bool(frag & 0x2000),
            ip_frag=frag & 0x1FFF, ip_options=p[20:ihl].hex(),
        )
        if keep_ip_id:
            d["ip_id"] = idv
        l4 = p[ihl:tot_len]
        if proto == 1 and len(l4) >= 8:
            typ, code = l4[0], l4[1]
            d.update(icmp_type=typ, icmp_code=code)
            if typ in (0, 8):
                iid, seq = struct.unpack("!HH", l4[4:8])
                d["icmp_id"] = icmpids.setdefault(iid, f"icmpid{len(icmpids) + 1}")
                d["icmp_seq"] = seq
                pl = l4[8:]
                d["icmp_payload"] = (bytes(min(16, len(pl))) + pl[16:]).hex()
            elif typ in _ICMP_ERRORS and len(l4) >= 28 and l4[8] >> 4 == 4:
                # an error quoting the packet it is about: the 4 bytes after the checksum,
                # then the quoted IPv4 packet normalized like any other (same IP id, port
                # and ISN maps) as ``quoted.<key>``
                d["icmp_rest"] = l4[4:8].hex()
                for k, v in one(l4[8:], raw=True).items():
                    d[f"quoted.{k}"] = v
            else:
                d["icmp_rest"] = l4[4:].hex()
        elif proto == 6 and len(l4) >= 20:
            sport, dport, seq, ack, off_flags, win, _csum, urg = struct.unpack(
                "!HHIIHHHH", l4[:20]
            )
            doff = (off_flags >> 12) * 4
            flags = off_flags & 0xFF
            fl = "".join(c for i, c in enumerate(_TCP_FLAGS) if flags & (1 << i))
            me = (src, sport, dst, dport)
            peer = (dst, dport, src, sport)
            if flags & 0x02 or me not in isn:
                isn[me] = seq
            rseq = (seq - isn[me]) & 0xFFFFFFFF
            if flags & 0x10 and peer not in isn:
                peer = nat_peer(me, ack)
            rack = (ack - isn[peer]) & 0xFFFFFFFF if (flags & 0x10 and peer in isn) else (
                ack if not flags & 0x10 else f"abs:{ack}")
            d.update(
                tcp_sport=port(sport, src), tcp_dport=port(dport, dst), tcp_flags=fl,
                tcp_seq=rseq, tcp_ack=rack,
                tcp_doff=doff, tcp_urg=urg, tcp_options=_tcp_opts(l4[20:doff]),
                tcp_payload_len=len(l4) - doff, tcp_payload=l4[doff:].hex(),
            )
            if keep_window:
                d["tcp_window"] = win
        elif proto == 17 and len(l4) >= 8:
            sport, dport, ulen, csum = struct.unpack("!HHHH", l4[:8])
            if dport in vx_ports and len(l4) >= 16:
                d.update(
                    udp_sport=vxsports.setdefault(sport, f"vxsport{len(vxsports) + 1}"),
                    udp_sport_in_range=32768 <= sport <= 60999,
                    udp_dport=dport, udp_len=ulen, udp_csum_zero=csum == 0,
                    vxlan_flags=f"0x{l4[8]:02x}", vxlan_reserved=(l4[9:12] + l4[15:16]).hex(),
                    vxlan_vni=int.from_bytes(l4[12:15], "big"),
                )
                nested(d, one(l4[16:], raw=False))
            else:
                d.update(udp_sport=port(sport, src), udp_dport=port(dport, dst),
                         udp_len=ulen, udp_payload=l4[8:].hex())
        elif proto == 4 and len(l4) >= 20:
            nested(d, one(l4, raw=True))
        d["eth_trailer"] = p[tot_len:].hex()

    def one(fr: bytes, raw: bool) -> dict[str, Any]:
        d: dict[str, Any] = {"len": len(fr)}
        if raw:
            if len(fr) >= 20 and fr[0] >> 4 == 4:
                ipv4(d, fr)
            else:
                d["raw"] = fr.hex()
            return d
        if len(fr) < 14:
            d["raw"] = fr.hex()
            return d
        d["eth_dst"] = mname(fr[0:6])
        d["eth_src"] = mname(fr[6:12])
        et = struct.unpack("!H", fr[12:14])[0]
        d["ethertype"] = f"0x{et:04x}"
        p = fr[14:]
        if et == 0x0806 and len(p) >= 28:
            htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", p[:8])
            d.update(
                arp_op={1: "request", 2: "reply"}.get(op, op),
                arp_htype=htype, arp_ptype=f"0x{ptype:04x}", arp_hlen=hlen, arp_plen=plen,
                arp_sha=mname(p[8:14]), arp_spa=str(ipaddress.IPv4Address(p[14:18])),
                arp_tha=mname(p[18:24]), arp_tpa=str(ipaddress.IPv4Address(p[24:28])),
                trailer=p[28:].hex(),
            )
        elif et == 0x0800 and len(p) >= 20:
            ipv4(d, p)
        else:
            d["payload"] = p.hex()
        return d

    out: list[dict[str, Any]] = []
    frames = list(frames)
    types = list(pkttypes) if pkttypes is not None else None
    if types is not None and len(types) != len(frames):
        raise ValueError("pkttypes must align with frames")
    for n, fr in enumerate(frames):
        d = one(fr, raw_ip)
        if types is not None:
            d["dir"] = "out" if types[n] == "outgoing" else "in"
            d["pkttype"] = types[n]
        out.append(d)
    return out
