"""The base of every twin: a set of ``pktk-`` network namespaces made and always deleted
here, the helper processes running in them, the commands that configure them, their
link state, and the capture and traffic drivers every twin shares.

Safety: every namespace is created by :meth:`Twin.add_ns` (which refuses a name without
the ``pktk-`` prefix) and every ``ip`` call names its namespace, so nothing is added to
the root namespace; :meth:`Twin.close` (run by ``__exit__``, on errors too) kills the
helpers and deletes every namespace created, in reverse order.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self

from . import traffic
from .capture import Capture, CaptureRun
from .commands import in_ns, run

__all__ = ["IPV6_QUIET", "SETUP_TIMEOUT", "Twin", "new_tag"]

SETUP_TIMEOUT = 10.0
# quiet time after the last DAD NS / MLD report (> mldv2_unsolicited_report_interval, 1 s)
IPV6_QUIET = 1.5
IPV6_SETTLE_TIMEOUT = 15.0
# the receive buffer limits pktsim models (wscale 10, 64240/65160 initial windows)
TCP_RMEM = "net.ipv4.tcp_rmem=4096 131072 33554432"


def new_tag(stem: str = "pktk") -> str:
    """``pktk-<pid>-<random>`` (``pktk6-`` for a dual-stack twin): the prefix of one
    twin's namespaces, unique per build so parallel runs never collide and leftovers
    can be traced to a process."""
    return f"{stem}-{os.getpid()}-{secrets.token_hex(2)}"


class Twin:
    """Namespaces, helper processes, link state, capture and traffic of one twin.

    A subclass builds a topology in :meth:`_setup` and says how it is keyed:
    :meth:`ns_of` (who -> namespace), :meth:`interfaces` (key -> (namespace, ifname)),
    :meth:`mac_names`, :meth:`flush_state` and, for raw-IP devices, :meth:`l2_len`."""

    def __init__(self, *, disable_ipv6: bool = True, workdir: str | None = None) -> None:
        self.disable_ipv6 = disable_ipv6
        self._created: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="pktk-")
        self.setup_counters: dict[str, dict[str, int]] = {}
        self._cap_seq = 0

    # ---------------------------------------------------------------- the topology
    def _setup(self) -> None:
        raise NotImplementedError

    def ns_of(self, who: str) -> str:
        """The namespace of ``who`` (a pod, a node, ...)."""
        raise NotImplementedError

    def interfaces(self) -> dict[str, tuple[str, str]]:
        """key -> (netns, ifname) for every captured interface."""
        raise NotImplementedError

    def mac_names(self) -> dict[str, str]:
        """MAC -> symbolic name, for ``normalize``."""
        raise NotImplementedError

    def flush_state(self) -> None:
        """Forget what a previous scenario taught the kernel (neighbours, FDB, metrics)."""
        raise NotImplementedError

    def l2_len(self, key: str) -> int:
        """Bytes of link-layer header the interface's pcap frames carry (14: Ethernet;
        0 for LINKTYPE_RAW devices such as ``tunl0``)."""
        return 14

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> Self:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the helpers, delete every namespace made (their interfaces, addresses
        and routes go with them) and the capture files; raise if a deletion failed."""
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

    def track(self, proc: subprocess.Popen[bytes]) -> None:
        """Remember a helper so :meth:`close` kills it even if its owner could not."""
        self._procs.append(proc)

    def untrack(self, proc: subprocess.Popen[bytes]) -> None:
        if proc in self._procs:
            self._procs.remove(proc)

    # ---------------------------------------------------------------- commands
    def ip(self, ns: str, *args: str, check: bool = True) -> str:
        """``ip -n <ns> ...``: every ip call names its namespace."""
        return run(["ip", "-n", ns, *args], check=check)

    def exec(self, who: str, argv: list[str], *, check: bool = True, timeout: float = 10.0) -> str:
        """Run ``argv`` in ``who``'s namespace."""
        return run(in_ns(self.ns_of(who), *argv), check=check, timeout=timeout)

    def sysctl(self, ns: str, *settings: str) -> None:
        """``sysctl -w`` inside ``ns`` (net.* sysctls are per namespace)."""
        run(in_ns(ns, "sysctl", "-q", "-w", *settings))

    def add_ns(self, ns: str, *, ipv6: bool | None = None) -> None:
        """Create namespace ``ns`` (``pktk-`` only) with the settings every twin pins.
        ``ipv6`` (default: not ``disable_ipv6``) says whether IPv6 stays on in it."""
        assert ns.startswith(("pktk-", "pktk6-"))
        run(["ip", "netns", "add", ns])
        self._created.append(ns)
        # tcp_rmem is per namespace, so the host's own setting cannot leak in
        self.sysctl(ns, TCP_RMEM)
        # IPv6 off before any interface exists/comes up: no RS, no MLD, no DAD noise.
        if not (not self.disable_ipv6 if ipv6 is None else ipv6):
            self.sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1")

    def veth_pair(self, ns: str, name: str, peer_ns: str, peer: str = "eth0") -> None:
        """A veth pair: ``name`` in ``ns``, ``peer`` moved into ``peer_ns``."""
        self.ip(ns, "link", "add", name, "type", "veth", "peer", "name", peer,
                "netns", peer_ns)

    def flush_bridge_fdb(self, ns: str, bridge: str, *, ipv6: bool) -> None:
        """Forget the dynamic FDB entries of ``bridge``.  With IPv6 on, not through
        ``ip link set type bridge fdb_flush``: that is a changelink, whose
        NETDEV_CHANGE makes addrconf resend the bridge's MLD reports ("we might have
        roamed", addrconf_notify -> ipv6_mc_up), frames a real node would not send;
        ``bridge fdb flush ... dynamic`` (RTM_DELNEIGH bulk) changes no link."""
        if ipv6:
            run(["bridge", "-n", ns, "fdb", "flush", "dev", bridge, "dynamic"])
        else:
            self.ip(ns, "link", "set", "dev", bridge, "type", "bridge", "fdb_flush")

    # ---------------------------------------------------------------- state
    def operstate(self, ns: str, ifname: str) -> str:
        info = json.loads(self.ip(ns, "-j", "link", "show", "dev", ifname))
        return str(info[0].get("operstate"))

    def counters(self) -> dict[str, dict[str, int]]:
        """key -> {rx, tx} packets from the kernel's link statistics."""
        out: dict[str, dict[str, int]] = {}
        cache: dict[str, dict[str, Any]] = {}
        for key, (ns, ifname) in self.interfaces().items():
            if ns not in cache:
                links = json.loads(self.ip(ns, "-s", "-j", "link", "show"))
                cache[ns] = {ln["ifname"]: ln for ln in links}
            st = cache[ns][ifname]["stats64"]
            out[key] = {"rx": int(st["rx"]["packets"]), "tx": int(st["tx"]["packets"])}
        return out

    def neighbours(self, who: str) -> list[dict[str, Any]]:
        return list(json.loads(self.ip(self.ns_of(who), "-j", "neigh", "show")))

    def _ports_forwarding(self, ports: dict[str, list[str]]) -> bool:
        for ns, names in ports.items():
            states = json.loads(run(["bridge", "-n", ns, "-j", "link", "show"]))
            fwd = {s["ifname"]: s.get("state") for s in states}
            if not all(fwd.get(p) == "forwarding" for p in names):
                return False
        return True

    def wait_ready(self, links: dict[str, tuple[str, str]], ports: dict[str, list[str]],
                   unknown_ok: Callable[[str], bool] = lambda key: False) -> None:
        """Bounded poll: every link in ``links`` operationally UP (``unknown_ok`` keys
        may say UNKNOWN: devices without carrier management) and every bridge port in
        ``ports`` (ns -> names) forwarding.  A scenario on a half-up topology would
        capture the kernel's start-up, not its forwarding."""
        deadline = time.monotonic() + SETUP_TIMEOUT
        while True:
            ok = True
            for key, (ns, ifname) in links.items():
                state = self.operstate(ns, ifname)
                if state != "UP" and not (unknown_ok(key) and state == "UNKNOWN"):
                    ok = False
            if ok and self._ports_forwarding(ports):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("links did not come up")
            time.sleep(0.02)

    def wait_bridge_igmp(self, keys: list[str], timeout: float = 3.0) -> None:
        """A bridge (multicast snooping on by default) joins 224.0.0.106 when it comes up
        and sends robustness(2) unsolicited IGMPv3 reports, the 2nd after a random
        delay <= 1 s. A real node is long past that: wait for both (bounded poll)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.counters()
            if all(c[k]["tx"] >= 2 for k in keys):
                return
            time.sleep(0.02)

    def tentative_addresses(self, ns: str) -> list[str]:
        """IPv6 addresses of ``ns`` still in DAD (``tentative``) or failed it."""
        out = []
        for link in json.loads(self.ip(ns, "-6", "-j", "addr", "show")):
            for a in link.get("addr_info", []):
                if a.get("tentative") or a.get("dadfailed"):
                    out.append(f"{link['ifname']}:{a['local']}")
        return out

    def icmp6_out(self, ns: str) -> dict[str, int]:
        """``ns``'s ICMPv6 output counters by type (/proc/net/snmp6 is per namespace)."""
        text = run(in_ns(ns, "cat", "/proc/net/snmp6"))
        return {k: int(v) for k, v in (ln.split() for ln in text.splitlines() if ln.strip())
                if k.startswith("Icmp6OutType")}

    def wait_ipv6_settled(self, namespaces: Iterable[str], quiet: float = IPV6_QUIET,
                          timeout: float = IPV6_SETTLE_TIMEOUT) -> None:
        """Bounded poll until no address is tentative and no namespace has sent a
        Neighbor Solicitation, an NA or an MLD report for ``quiet`` seconds.

        Why: the kernel's own start-up frames come at random times.  DAD starts after a
        random delay below rtr_solicit_delay (1 s, addrconf_dad_kick) and its NS waits
        retrans_time (1 s) for an answer; every group joined is reported twice (MLDv2
        robustness 2), the 2nd after a random delay below
        mldv2_unsolicited_report_interval (1 s, mld_ifc_start_work / mld_dad_start_work).
        A real node is long past all that.  Router Solicitations are not waited for:
        a pod (forwarding 0, accept_ra 1) sends them for ever with a randomised backoff
        (addrconf_rs_timer, rfc3315_s14_backoff_update; 4 s, 8 s, 16 s, ... up to
        1 h); :meth:`Capture.without_router_solicitations` removes them."""
        nss = list(namespaces)
        deadline = time.monotonic() + timeout
        last: dict[str, dict[str, int]] = {}
        since = time.monotonic()
        while True:
            tentative = [a for ns in nss for a in self.tentative_addresses(ns)]
            now = {ns: {k: v for k, v in self.icmp6_out(ns).items()
                        if k != "Icmp6OutType133"} for ns in nss}
            if tentative or now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"IPv6 did not settle: tentative {tentative}")
            time.sleep(0.05)

    # ---------------------------------------------------------------- capture
    @contextlib.contextmanager
    def capture(self, keys: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Run tcpdump on the interfaces (default: all); yields a dict which, after the
        with-block, holds ``"capture"`` -> :class:`Capture`."""
        self._cap_seq += 1
        cap = CaptureRun(self, keys, self._cap_seq)
        holder: dict[str, Any] = {}
        try:
            cap.start()
            yield holder
            holder["capture"] = cap.stop()
        finally:
            cap.kill()

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
        """See :func:`traffic.ping`."""
        return traffic.ping(self, src, dst_ip, count, interval, size)

    def tcp_exchange(self, client: str, server: str, dst_ip: str, port: int = 8080,
                     body: str = "hello from pktsim\n", request: str | None = None,
                     bind: str = "0.0.0.0", server_port: int | None = None) -> dict[str, str]:
        """See :func:`traffic.tcp_exchange`: an HTTP/1.1 GET, both sockets closed after."""
        return traffic.tcp_exchange(self, client, server, dst_ip, port, body, request, bind,
                                    server_port)

    def tcp_refused(self, client: str, dst_ip: str, port: int) -> str:
        """See :func:`traffic.tcp_refused`: a connect() that must get ECONNREFUSED."""
        return traffic.tcp_refused(self, client, dst_ip, port)
