"""The netfilter of one namespace: tables, conntrack and NAT run at the five IPv4 hooks.

Theory of operation
-------------------
``Netns`` calls ``hook(name, now, pkt, in_dev, out_dev, frame, r)`` at each hook and
continues with the bytes returned (None: the packet is gone).  Within a hook the work runs
in the kernel's priority order, which is the data ``pipeline.PIPELINE`` (this table is its
``render()``; a test checks they agree) walked by one runner, ``hook``:

    PREROUTING   raw, conntrack (track), mangle, nat (destination NAT)
    INPUT        mangle, filter, nat (source NAT), conntrack confirm
    FORWARD      mangle, filter
    OUTPUT       raw, conntrack (track), mangle, nat (destination NAT), filter
    POSTROUTING  mangle, nat (source NAT), conntrack confirm

The filter and mangle tables see every packet.  The nat table is walked only for the first
packet of a connection, and only once per hook type (``nat.py``); later packets — both
ways — get the stored binding applied with no walk.  A packet that conntrack calls INVALID
gets no NAT at all.

What belongs to one packet while it crosses the namespace — its conntrack entry and
direction, and ``skb->mark`` — lives in a context keyed by the frame's ``pid``: made at
PREROUTING or OUTPUT, consumed at INPUT or POSTROUTING (where a new entry is confirmed into
the table).  A packet sent out ``lo`` comes straight back in at PREROUTING keeping its
context (the kernel does not re-track looped packets).  A RST sent by REJECT carries the
rejected packet's entry as RELATED, so it is un-NATed like a reply.

Every decision is a ``Step`` in the reaction, with a typed detail (``pktsim.core.events``):
conntrack states (``ConntrackState``), each NAT rewrite as a ``NatRewrite`` (field, old,
new) with the ``RuleHit`` that chose it, rule verdicts with the deciding rule's text
(``RuleHit``), and drops with their ``DropReason`` (``Drop``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from pktsim.core.events import ChainNote, ConntrackState, Event, NatRewrite, PolicyVerdict, RuleHit
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.netfilter import nat
from pktsim.netfilter.conntrack import Conn, Conntrack, ConntrackConfig, Track
from pktsim.netfilter.engine import Hit, Outcome, evaluate
from pktsim.netfilter.ipset import IpSets
from pktsim.netfilter.mangle import DST, SRC, rewrite, tcp_reset
from pktsim.netfilter.memo import Walked, WalkMemo
from pktsim.netfilter.pipeline import PIPELINE, Hook
from pktsim.netfilter.rules import BUILTIN_CHAINS, Table
from pktsim.netfilter.save import parse, render
from pktsim.netfilter.targets import REJECT_WITH, Dnat, Masquerade, Reject, Snat
from pktsim.netfilter.tuples import ICMP6_ID_TYPES, ICMP_ID_TYPES, Tuple, endpoint, packet_tuple
from pktsim.netfilter.view import Env, PacketView, RecentTables
from pktsim.wire.build import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP
from pktsim.wire.parse import ip_str

if TYPE_CHECKING:
    from pktsim.devices.netns import Netns

PENDING_LIMIT = 4096  # contexts of packets dropped between hooks are forgotten past this
OWNERS = (("KUBE-", "kube-proxy "), ("FLANNEL-", "flannel "), ("CNI-", "cni "))


@dataclass(slots=True)
class _Ctx:
    track: Track
    mark: int = 0


@dataclass(slots=True)
class _Pkt:
    """The arguments of one hook call, passed along together."""

    hook: str
    now: int
    in_dev: str
    out_dev: str
    frame: Frame
    r: Reaction

    @property
    def iface(self) -> str:
        return self.in_dev if self.hook in ("PREROUTING", "INPUT", "FORWARD") else self.out_dev


class Netfilter:
    """``Hooks`` for a ``Netns``: ``ns.hooks = Netfilter(ns, rng)``.

    What differs between iptables and ip6tables is held in class attributes, picked once
    per instance (``hooks6.Netfilter6`` overrides them): the packet reader, the rewriter,
    where the protocol byte is, the conntrack class, the restore text's family."""

    family = 4
    _view = staticmethod(PacketView.of)
    _rewrite = staticmethod(rewrite)
    _tuple_at = staticmethod(packet_tuple)
    _proto_at = 9  # the protocol byte (the IPv6 next header is byte 6)
    _icmp_proto = PROTO_ICMP
    _conntrack_cls: type[Conntrack] = Conntrack

    def __init__(self, ns: Netns, rng: random.Random, *,
                 config: ConntrackConfig | None = None) -> None:
        self.ns = ns
        self.tables: dict[str, Table] = {name: Table(name) for name in BUILTIN_CHAINS}
        self.conntrack = self._conntrack_cls(config)
        self.recent = RecentTables()
        self._stat_rng = random.Random(rng.getrandbits(64))  # -m statistic draws
        self._nat_rng = random.Random(rng.getrandbits(64))  # NAT port choices
        self._pending: dict[int, _Ctx] = {}
        self.ipsets = IpSets()  # the namespace's IP sets (felix's, on Calico)
        # chains whose DROP is a network-policy verdict (felix's endpoint and policy chains)
        self.policy_chains: tuple[str, ...] = ()
        # what a filter walk's fired rules say about NetworkPolicy (felix's ``Explainer``)
        self.explain: Callable[[list[Hit]], list[PolicyVerdict]] | None = None
        self._walk_env = Env(0, self._stat_rng, self.recent, self._addr_type,
                             self._addr_type_on, self.ipsets)
        self._memo = WalkMemo()
        self._looped: dict[int, _Ctx] = {}
        self._generation = 0
        self.gen_note = ""  # " [rules gen N]" once the rules were rewritten during the run

    @property
    def generation(self) -> int:
        """How many times the node's rules were rewritten during the run (0: as built);
        every rule walk's trace text names it once it is not 0."""
        return self._generation

    @generation.setter
    def generation(self, value: int) -> None:
        self._generation = value
        self.gen_note = f" [rules gen {value}]" if value else ""

    # -- configuration --------------------------------------------------------------------
    def table(self, name: str) -> Table:
        return self.tables[name]

    def load(self, text: str) -> None:
        """``iptables-restore``: replace every table the text names (validated first)."""
        loaded = parse(text, family=self.family)
        for table in loaded.values():
            table.validate()
        self.tables.update(loaded)

    def save(self) -> str:
        """``iptables-save`` (tables with any rule, user chain or non-ACCEPT policy)."""
        return render(t for t in self.tables.values() if not t.is_empty())

    def validate(self) -> None:
        for table in self.tables.values():
            table.validate()

    # -- the Hooks protocol ---------------------------------------------------------------
    def hook(self, name: str, now: int, pkt: bytes, in_dev: str, out_dev: str, frame: Frame,
             r: Reaction) -> bytes | None:
        """Run the hook's stages (``pipeline.PIPELINE``) in order until one drops."""
        plan, tracks, stages = _RUNNERS[name]
        p = _Pkt(name, now, in_dev, out_dev, frame, r)
        ctx, new = self._enter(plan, tracks, p, pkt)
        if ctx is not None:
            for new_only, run, arg in stages:
                if new or not new_only:
                    out = run(self, p, pkt, ctx, arg)
                    if out is None:
                        break
                    pkt = out
            else:
                self._leave(plan, p, ctx)
                return pkt
        self._pending.pop(frame.pid, None)
        return None

    def _enter(self, plan: Hook, tracks: bool, p: _Pkt,
               pkt: bytes) -> tuple[_Ctx | None, bool]:
        """The packet's context, and whether it is new here (None: dropped on tracking)."""
        pid = p.frame.pid
        if plan.carried == "looped":
            ctx = self._looped.pop(pid, None) if p.in_dev == "lo" else None
        elif plan.carried == "peek":
            ctx = self._pending.get(pid)
        else:
            ctx = self._pending.pop(pid, None)
        if ctx is not None:
            return ctx, False
        if tracks:  # raw and conntrack are stages of this hook: they run for it
            return _Ctx(Track(None)), True
        return self._fresh(p, pkt), False  # it met no earlier hook: tracked here

    def _leave(self, plan: Hook, p: _Pkt, ctx: _Ctx) -> None:
        if plan.after == "remember":
            self._remember(p.frame.pid, ctx)
        elif plan.after == "loop" and p.out_dev == "lo":
            self._looped[p.frame.pid] = ctx
            _trim(self._looped)

    def _remember(self, pid: int, ctx: _Ctx) -> None:
        self._pending[pid] = ctx
        _trim(self._pending)

    def _fresh(self, p: _Pkt, pkt: bytes) -> _Ctx | None:
        ctx = _Ctx(Track(None))
        return ctx if self._track(p, pkt, ctx) is not None else None

    # -- conntrack ------------------------------------------------------------------------
    def _track(self, p: _Pkt, pkt: bytes, ctx: _Ctx, _: object = None) -> bytes | None:
        """The conntrack stage: the packet's entry into ``ctx`` (None: the table is full)."""
        tr = self.conntrack.track(p.now, pkt)
        if tr.full:
            p.r.drop(DropReason.CONNTRACK_FULL, p.iface, p.frame)
            return None
        ctx.track = tr
        if tr.conn is None:
            if tr.ctstate == "UNTRACKED":  # Neighbor Discovery, MLD: no entry, nothing to say
                return pkt
            text = f"conntrack: {tr.note} (ctstate INVALID)"
        elif tr.new:
            text = f"conntrack: {tr.note} {tr.conn.orig}"
        elif tr.ctstate == "RELATED":
            text = f"conntrack: {tr.note}"
        elif tr.note:
            text = f"conntrack: {tr.conn.orig}: {tr.note}"
        else:
            return pkt
        p.r.step(Event.CONNTRACK, text, p.iface, p.frame, ConntrackState(tr.ctstate))
        return pkt

    def _confirm(self, p: _Pkt, pkt: bytes, ctx: _Ctx, _: object = None) -> bytes | None:
        """The conntrack confirm stage: a new entry into the table (None: a clash)."""
        conn = ctx.track.conn
        if conn is None or ctx.track.ctstate == "RELATED" or self.conntrack.confirm(conn):
            return pkt
        p.r.drop_as(f"drop: nf_conntrack: insert failed, {conn.reply} already tracked",
                    DropReason.RULE, p.iface, p.frame)
        return None

    # -- table walks ----------------------------------------------------------------------
    def _env(self, now: int) -> Env:
        env = self._walk_env  # one Env per namespace, its clock set for each walk
        env.now = now
        return env

    def _addr_type(self, ip: bytes) -> str:
        """``inet_addr_type``: what the local routing table says the address is."""
        if self.ns.is_local(ip):
            return "LOCAL"
        if ip == b"\xff\xff\xff\xff" or ip[0] == 0:
            return "BROADCAST"
        if 224 <= ip[0] <= 239:
            return "MULTICAST"
        addr = IPv4Address(ip)
        if any(a.network.prefixlen < 31 and addr == a.network.broadcast_address
               for _, a in self.ns.addresses()):
            return "BROADCAST"
        return "UNICAST"

    def _addr_type_on(self, ip: bytes, dev: str) -> str:
        """``inet_dev_addr_type``: LOCAL only for an address of ``dev`` itself."""
        if any(a.ip.packed == ip for name, a in self.ns.addresses() if name == dev):
            return "LOCAL"
        return "UNICAST" if self._addr_type(ip) == "LOCAL" else self._addr_type(ip)

    def _run(self, table: str, p: _Pkt, pkt: bytes, ctx: _Ctx) -> Outcome | None:
        t = self.tables[table]
        if p.hook not in t or not t[p.hook].rules:
            return None
        view = self._view(pkt, p.in_dev, p.out_dev, ctx.mark, ctx.track.ctstate,
                          _nat_status(ctx.track.conn))
        out = evaluate(t, p.hook, view, self._env(p.now))
        ctx.mark = out.mark
        return out

    def _walked(self, table: str, p: _Pkt, pkt: bytes, ctx: _Ctx) -> Walked | None:
        """A raw, mangle or filter walk's outcome and trace detail (None: no rules here),
        from the memo when the same facts were walked before (``memo.py``)."""
        t = self.tables[table]
        chain = t.chain(p.hook)
        if chain is None or not chain.rules:
            return None
        view = self._view(pkt, p.in_dev, p.out_dev, ctx.mark, ctx.track.ctstate,
                          _nat_status(ctx.track.conn))
        memo = self._memo.of(t)
        key = memo.key(p.hook, view) if memo is not None else ()
        walked = memo.get(key) if memo is not None else None
        if walked is None:
            out = evaluate(t, p.hook, view, self._env(p.now))
            walked = out, _walk_detail(table, p.hook, out)
            if memo is not None:
                memo.put(key, walked)
        ctx.mark = walked[0].mark
        return walked

    def _walk(self, p: _Pkt, pkt: bytes, ctx: _Ctx, table: str) -> bytes | None:
        """A raw, mangle or filter stage; None when the packet is dropped or rejected."""
        before = ctx.mark
        walked = self._walked(table, p, pkt, ctx)
        if walked is None:
            return pkt
        out, detail = walked
        if out.verdict == "ACCEPT" and not out.hits:
            return pkt
        if self.explain is not None and table == "filter":
            for verdict in self.explain(out.hits):
                p.r.step(Event.POLICY, f"{table} {p.hook}: {verdict.text()}{self.gen_note}",
                         p.iface, p.frame, verdict)
        hit = out.decider
        mark = f", mark {before:#x} -> {ctx.mark:#x}" if ctx.mark != before else ""
        if out.verdict == "ACCEPT":  # said only when a rule accepted or the mark changed
            if hit or mark:
                how = "ACCEPT" if hit else "policy ACCEPT"
                p.r.step(Event.NETFILTER, f"{table} {p.hook}: {how} ({out.path_text()})"
                              f"{mark}{self.gen_note}", p.iface, p.frame, detail)
            return pkt
        if isinstance(out.target, Reject):
            self._reject(p, pkt, ctx, out.target, out, detail)
            return None
        why = (f"{table} {p.hook}: {'DROP' if hit else 'policy DROP'} ({out.path_text()})"
               f"{self.gen_note}")
        policy = hit is not None and hit.chain.startswith(self.policy_chains)
        p.r.drop(DropReason.POLICY if policy else DropReason.RULE, p.iface, p.frame, why,
                 detail)
        return None

    def _reject(self, p: _Pkt, pkt: bytes, ctx: _Ctx, target: Reject, out: Outcome,
                detail: RuleHit) -> None:
        p.r.drop_as(f"REJECT {target.with_} ({out.path_text()}){self.gen_note}",
                    DropReason.RULE, p.iface,
                    p.frame, detail)
        if target.with_ != "tcp-reset":
            self.ns.icmp_error(p.now, 3, REJECT_WITH[target.with_], pkt, p.frame, p.r,
                               in_dev=p.in_dev)
            return
        rst = tcp_reset(pkt) if pkt[9] == PROTO_TCP else None
        if rst is None:
            return
        frame = Frame(rst, self.ns.new_pid(), p.frame.flow)
        tr = ctx.track
        if tr.conn is not None:  # nf_ct_attach: the RST is RELATED to the rejected packet
            self._pending[frame.pid] = _Ctx(Track(tr.conn, 1 - tr.dir, "RELATED"))
        p.r.step(Event.SEND, f"REJECT: send TCP RST to {ip_str(rst[16:20])}", p.iface, frame)
        self.ns.ip_output(p.now, rst, frame, p.r)

    # -- NAT ------------------------------------------------------------------------------
    def _nat(self, p: _Pkt, pkt: bytes, ctx: _Ctx, mt: int) -> bytes | None:
        """The destination (``mt`` DST) or source NAT stage."""
        tr = ctx.track
        conn = tr.conn
        if conn is None:
            return pkt
        if tr.ctstate == "RELATED" and pkt[self._proto_at] == self._icmp_proto:
            return self._icmp_related(p, pkt, ctx, mt)
        bound: tuple[str, str, RuleHit | None] | None = None
        if tr.ctstate == "NEW" and tr.dir == 0 and mt not in conn.nat_init \
                and not conn.confirmed:
            bound = self._bind(p, pkt, ctx, mt)
            if bound is None:
                return None
        target = nat.manip_for(conn, tr.dir, mt)
        if target is None:
            return pkt
        label, suffix, rule = bound or (self._replay_text(conn, tr.dir, mt), "", None)
        new = self._rewrite(pkt, target, mt)
        self._nat_step(p, pkt, new, mt, label, suffix, rule)
        return new

    @staticmethod
    def _replay_text(conn: Conn, d: int, mt: int) -> str:
        if d == 0:
            return f"conntrack {conn.nat_kind.get(mt, 'NAT').split()[0]}"
        undone = DST if mt == SRC else SRC
        return f"conntrack un-{conn.nat_kind.get(undone, 'NAT').split()[0]}"

    def _bind(self, p: _Pkt, pkt: bytes, ctx: _Ctx,
              mt: int) -> tuple[str, str, RuleHit | None] | None:
        """Walk the nat chain of this hook for a new connection and record the binding;
        returns the trace label, suffix and detail of the rewrite, None to drop."""
        conn = ctx.track.conn
        assert conn is not None
        before = ctx.mark
        out = self._run("nat", p, pkt, ctx)
        target = out.target if out is not None else None
        rng: nat.NatRange | None = None
        if isinstance(target, Dnat | Snat):
            fully = isinstance(target, Snat) and target.random_fully
            rng = nat.NatRange(target.ip.packed, target.ports, target.random, fully)
        elif isinstance(target, Masquerade):
            ip = self._masq_source(p.out_dev, pkt)
            if ip is None:
                p.r.drop_as(f"drop: MASQUERADE: no IPv{self.family} address on {p.out_dev}",
                            DropReason.RULE, p.iface, p.frame)
                return None
            rng = nat.NatRange(ip, target.ports, target.random, target.random_fully)
        kind = type(target).__name__.upper() if rng is not None else ""
        nat.setup(self.conntrack, p.now, conn, mt, rng, kind, self._nat_rng)
        mark = f", mark {before:#x} -> {ctx.mark:#x}" if ctx.mark != before else ""
        if out is None:
            return f"conntrack {conn.nat_kind.get(mt, 'NAT')}", "", None
        hit = out.decider
        if mark and mt not in conn.nat_kind:
            p.r.step(Event.NETFILTER, f"nat {p.hook}: no NAT ({out.path_text()}){mark}"
                     f"{self.gen_note}",
                     p.iface, p.frame, ChainNote("nat", p.hook))
        owner = _owner(out.path) if rng is not None else ""
        label = f"{owner}{conn.nat_kind.get(mt, 'NAT')}"
        rule = RuleHit("nat", p.hook, hit.chain if hit else p.hook, hit.text if hit else "",
                       tuple(str(h) for h in out.hits))
        return label, f" ({out.path_text()}){mark}{self.gen_note}", rule

    def _masq_source(self, dev: str, pkt: bytes) -> bytes | None:
        """MASQUERADE's new source address for a packet leaving by ``dev``."""
        return self.ns.masquerade_source(dev)

    def _nat_step(self, p: _Pkt, old: bytes, new: bytes, mt: int, label: str, suffix: str,
                  rule: RuleHit | None = None) -> None:
        if old == new:
            return
        field = "src" if mt == SRC else "dst"
        a, b = _side(old, mt, 0, self._tuple_at), _side(new, mt, 0, self._tuple_at)
        p.r.step(Event.NAT, f"{label} {a} -> {b}{suffix}", p.iface, p.frame,
                 NatRewrite(field, a, b, rule))

    def _icmp_related(self, p: _Pkt, pkt: bytes, ctx: _Ctx, mt: int) -> bytes:
        conn = ctx.track.conn
        assert conn is not None
        new = nat.icmp_reply(pkt, conn, ctx.track.dir, mt)
        if new != pkt:
            ihl = (pkt[0] & 0x0F) * 4
            inner_mt = DST if mt == SRC else SRC
            inner = f"{_side(pkt, inner_mt, ihl + 8)} -> {_side(new, inner_mt, ihl + 8)}"
            self._nat_step(p, pkt, new, mt, "conntrack un-NAT ICMP error",
                           f", quoted {'dst' if inner_mt == DST else 'src'} {inner}")
        return new


Runner = Callable[[Netfilter, _Pkt, bytes, _Ctx, Any], "bytes | None"]
_RUN: dict[str, tuple[Runner, Any]] = {
    "raw": (Netfilter._walk, "raw"),
    "conntrack": (Netfilter._track, None),
    "mangle": (Netfilter._walk, "mangle"),
    "nat-dst": (Netfilter._nat, DST),
    "filter": (Netfilter._walk, "filter"),
    "nat-src": (Netfilter._nat, SRC),
    "confirm": (Netfilter._confirm, None),
}
"""What each stage of ``pipeline.PIPELINE`` runs: a method and its argument."""
_RUNNERS: dict[str, tuple[Hook, bool, tuple[tuple[bool, Runner, Any], ...]]] = {
    name: (plan, plan.tracks, tuple((s.new_only, *_RUN[s.name]) for s in plan.stages))
    for name, plan in PIPELINE.items()}
"""Each hook's plan, whether it tracks, and its stages as (new only?, method, argument),
made once: the per-packet runner only reads them."""


def _walk_detail(table: str, hook: str, out: Outcome) -> RuleHit:
    """The trace's facts about a walk: the deciding rule, and every rule that fired."""
    hit = out.decider
    return RuleHit(table, hook, hit.chain if hit else hook,
                   hit.text if hit else f"-P {hook} {out.verdict}", tuple(str(h) for h in out.hits))


def _side(pkt: bytes, mt: int, off: int = 0,
          tuple_at: Callable[[bytes, int], Tuple | None] = packet_tuple) -> str:
    """The source or destination endpoint of the packet at ``off``, as the trace prints it
    (``tuple_at``: ``tuples.packet_tuple6`` for an IPv6 packet)."""
    t = tuple_at(pkt, off)
    if t is None:
        return "?"
    icmp = t.proto == PROTO_ICMP or t.proto == PROTO_ICMPV6
    if icmp and t.icmp_type not in (ICMP_ID_TYPES if t.proto == PROTO_ICMP else ICMP6_ID_TYPES):
        return endpoint(0, t.src if mt == SRC else t.dst, 0)
    if mt == SRC:
        return endpoint(t.proto, t.src, t.sport)
    return endpoint(t.proto, t.dst, t.sport if icmp else t.dport)


def _owner(path: list[str]) -> str:
    for chain in reversed(path):
        for prefix, owner in OWNERS:
            if chain.startswith(prefix):
                return owner
    return ""


def _trim(d: dict[int, _Ctx]) -> None:
    while len(d) > PENDING_LIMIT:
        del d[next(iter(d))]


_NAT_NONE: frozenset[str] = frozenset()
_NAT_BITS = {(False, False): _NAT_NONE, (True, False): frozenset({"SNAT"}),
             (False, True): frozenset({"DNAT"}), (True, True): frozenset({"SNAT", "DNAT"})}


def _nat_status(conn: Conn | None) -> frozenset[str]:
    """The entry's ``IPS_SRC_NAT``/``IPS_DST_NAT`` status, as ``--ctstate SNAT,DNAT`` reads
    it (set when the NAT binding is made: ``nat.setup``, as ``nf_nat_setup_info`` sets it)."""
    if conn is None:
        return _NAT_NONE
    return _NAT_BITS[(conn.src_nat, conn.dst_nat)]
