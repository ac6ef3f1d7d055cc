"""What a flow's client saw, as types: ``FlowStatus``, ``FlowResult`` and ``SocketError``.

A client application keeps one ``FlowResult``; ``pktsim run`` prints its ``line()``.  The
status is a ``FlowStatus``; an error's own words (``destination unreachable (code 1) from
10.244.0.1``, ``could not resolve (NXDOMAIN)``) are kept beside it as ``reason``, so a
program reads the status and a person reads the reason.

An error reaching a socket is a ``SocketError``: its status and its text.  For an ICMP error
the status is the kernel's mapping, ``icmp_err_convert`` in net/ipv4/icmp.c (destination
unreachable code 0 → ENETUNREACH, 1 → EHOSTUNREACH, 3 → ECONNREFUSED, 13 → EHOSTUNREACH,
...).  ``tcp_v4_err`` (net/ipv4/tcp_ipv4.c) makes any ICMP error a hard one while
connecting, time exceeded included (EHOSTUNREACH): ``connect_status`` is what a TCP flow
reports.  Errors the stack makes itself (no route: ENETUNREACH; ARP failed: EHOSTUNREACH)
carry the same statuses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class FlowStatus(enum.StrEnum):
    """How a flow ended; the value is the word ``pktsim run`` prints when no reason is."""

    PENDING = "pending"  # still running (or the run stopped before it ended)
    OK = "ok"  # answered at least once
    NO_REPLY = "no reply"  # sent, never answered, no error came back
    REFUSED = "connection refused"  # ECONNREFUSED: RST, or ICMP port/protocol unreachable
    NO_ROUTE = "no route to host"  # EHOSTUNREACH: ICMP host unreachable, ARP failed
    NET_UNREACHABLE = "network unreachable"  # ENETUNREACH: no route, ICMP net unreachable
    TIMED_OUT = "timed out"  # ETIMEDOUT: TCP gave up retransmitting
    INVALID = "invalid argument"  # EINVAL: the route is a blackhole
    ICMP_ERROR = "ICMP error"  # another ICMP error reached the socket (reason says which)
    UNRESOLVED = "could not resolve"  # a name that resolved to no address
    DNS_ERROR = "DNS error"  # a lookup flow whose answer was an error (reason: the rcode)
    ADDRESS_IN_USE = "address already in use"  # EADDRINUSE: bind() to a port a socket holds


# ICMP error -> the errno a socket is told, as icmp_err_convert[] (net/ipv4/icmp.c) and
# icmp_err() give it, as a status; errnos without a status of their own (ENOPROTOOPT,
# EMSGSIZE, EOPNOTSUPP, EHOSTDOWN, ENONET, EPROTO) are reported as the ICMP error itself
UNREACH_STATUS = {0: FlowStatus.NET_UNREACHABLE, 1: FlowStatus.NO_ROUTE,
                  3: FlowStatus.REFUSED, 6: FlowStatus.NET_UNREACHABLE,
                  9: FlowStatus.NET_UNREACHABLE, 10: FlowStatus.NO_ROUTE,
                  11: FlowStatus.NET_UNREACHABLE, 12: FlowStatus.NO_ROUTE,
                  13: FlowStatus.NO_ROUTE, 14: FlowStatus.NO_ROUTE, 15: FlowStatus.NO_ROUTE}
# the statuses that are an errno's own words: a TCP connect reports them without the ICMP text
ERRNO_STATUSES = frozenset((FlowStatus.NET_UNREACHABLE, FlowStatus.NO_ROUTE,
                            FlowStatus.REFUSED))
ICMP_KINDS = {3: "destination unreachable", 11: "time exceeded", 12: "parameter problem"}
UNREACH6_STATUS = {0: FlowStatus.NET_UNREACHABLE, 2: FlowStatus.NO_ROUTE,
                   3: FlowStatus.NO_ROUTE, 4: FlowStatus.REFUSED}
ICMP6_KINDS = {1: ("destination unreachable", 3), 2: ("packet too big", 3),
               3: ("time exceeded", 11), 4: ("parameter problem", 12)}


@dataclass(frozen=True, slots=True)
class SocketError:
    """An error a socket is told about (``sk_err``): the status its owner reports, and the
    error in its own words."""

    status: FlowStatus
    text: str
    icmp_type: int = 0  # 0: made by the stack itself

    def connect_status(self) -> FlowStatus:
        """What ``connect()`` fails with: time exceeded is EHOSTUNREACH (icmp_err_convert)."""
        return FlowStatus.NO_ROUTE if self.icmp_type == 11 else self.status

    @classmethod
    def icmp(cls, icmp_type: int, code: int, sender: str) -> SocketError:
        """An ICMP error quoting a packet the socket sent, from ``sender``."""
        kind = ICMP_KINDS.get(icmp_type, f"type {icmp_type}")
        status = UNREACH_STATUS.get(code, FlowStatus.ICMP_ERROR) if icmp_type == 3 \
            else FlowStatus.ICMP_ERROR
        return cls(status, f"{kind} (code {code}) from {sender}", icmp_type)

    @classmethod
    def icmp6(cls, icmp_type: int, code: int, sender: str) -> SocketError:
        """An ICMPv6 error, with ``icmpv6_err_convert``'s errno (net/ipv6/icmp.c:
        destination unreachable 0 ENETUNREACH, 2 and 3 EHOSTUNREACH, 4 ECONNREFUSED; time
        exceeded EHOSTUNREACH).  ``icmp_type`` keeps ICMPv4's number for the same error, so
        ``connect_status`` reads both families alike."""
        kind, v4_type = ICMP6_KINDS.get(icmp_type, (f"ICMPv6 type {icmp_type}", 0))
        status = UNREACH6_STATUS.get(code, FlowStatus.ICMP_ERROR) if icmp_type == 1 else \
            FlowStatus.NO_ROUTE if icmp_type == 3 else FlowStatus.ICMP_ERROR
        return cls(status, f"{kind} (code {code}) from {sender}", v4_type)

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class FlowResult:
    """What a client saw: the summary line of ``pktsim run`` is made from it."""

    flow: str
    kind: str
    target: str
    sent: int = 0
    answered: int = 0
    status: FlowStatus = FlowStatus.PENDING
    notes: list[str] = field(default_factory=list)
    first_answer: bytes = b""
    answered_by: str = ""
    reason: str = ""  # the error in its own words, when it says more than ``status``
    errors: list[str] = field(default_factory=list)  # every error, in order (``fail``)

    @property
    def ok(self) -> bool:
        return self.status is FlowStatus.OK

    def end(self, status: FlowStatus, reason: str = "") -> None:
        """Set the outcome (``reason`` only when it says more than the status's word)."""
        self.status = status
        self.reason = "" if reason == status.value else reason

    def fail(self, status: FlowStatus, reason: str = "") -> None:
        """An error: noted; it is the outcome unless something was answered already."""
        self.notes.append(reason or status.value)
        self.errors.append(reason or status.value)
        if not self.answered:
            self.end(status, reason)

    def answer(self) -> None:
        self.answered += 1
        self.end(FlowStatus.OK)

    def text(self) -> str:
        """The status as ``pktsim run`` prints it: the reason when there is one."""
        return self.reason or self.status.value

    def line(self) -> str:
        """``NAME: KIND to TARGET: STATUS (A/S answered) — LAST NOTE``; the note is left out
        when it only repeats the status (``connection refused — connection refused``)."""
        text = self.text()
        if self.kind == "frame":  # an injected frame: where it went in, and its fate
            return f"{self.flow}: frame on {self.target}: {text}"
        extra = f" — {self.notes[-1]}" if self.notes and self.notes[-1] != text else ""
        return (f"{self.flow}: {self.kind} to {self.target}: {text} "
                f"({self.answered}/{self.sent} answered){extra}")
