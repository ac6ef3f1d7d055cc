"""glibc's search-list logic and resolver options (resolv.conf(5)), without any I/O.

Theory of operation
-------------------
``StubOptions.from_conf`` reads ``options`` as glibc's ``res_setoptions`` does: ``ndots``
(default 1, at most 15), ``timeout`` (5 s, at most 30), ``attempts`` (2, at most 5),
``rotate``, ``single-request``, ``single-request-reopen``, ``use-vc``, ``edns0``,
``trust-ad``, ``no-tld-query``; later options override earlier ones.

``search_plan`` is ``__res_context_search`` (glibc ``resolv/res_query.c``) as a generator: it
yields each name to query and is sent back the outcome of that query:

* a trailing dot: the name as is, and nothing else;
* ``dots >= ndots``: the name as is first; success ends the search;
* then (``RES_DEFNAMES``/``RES_DNSRCH``, both on) ``name.domain`` for each search domain;
  NXDOMAIN and NODATA go on to the next domain, and so does SERVFAIL; a timeout or another
  error ends the search loop (glibc's ``done++``); ``ECONNREFUSED`` (every server refused)
  ends the whole lookup;
* finally the name as is, unless it was tried first or the search list held the root.

The generator returns the ``h_errno`` glibc reports: the first absolute query's if there was
one, else ``NO_DATA`` if any domain had NODATA, else ``TRY_AGAIN`` after a SERVFAIL, else
the last query's.  ``classify`` is ``__res_context_query``'s verdict on one or two answers:
success as soon as either answer is NOERROR with ANCOUNT > 0.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

from pktsim.dns.resolv import ResolvConf

# outcomes of one candidate (one res_query / res_send) and h_errno values
OK = "OK"
HOST_NOT_FOUND = "HOST_NOT_FOUND"  # NXDOMAIN
NO_DATA = "NO_DATA"  # NOERROR, no answer records
TRY_AGAIN = "TRY_AGAIN"  # SERVFAIL, or no answer at all
NO_RECOVERY = "NO_RECOVERY"  # FORMERR, NOTIMP, REFUSED, ...
SERVFAIL = "SERVFAIL"  # TRY_AGAIN with a SERVFAIL answer in hand: the search goes on
TIMEOUT = "TIMEOUT"  # TRY_AGAIN with no answer (ETIMEDOUT): the search loop stops
ECONNREFUSED = "ECONNREFUSED"  # every server answered with ICMP port unreachable

RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY = 15, 30, 5


@dataclass(frozen=True, slots=True)
class StubOptions:
    ndots: int = 1
    timeout: int = 5  # seconds (RES_TIMEOUT)
    attempts: int = 2  # RES_DFLRETRY
    rotate: bool = False
    single_request: bool = False
    single_request_reopen: bool = False
    use_vc: bool = False
    edns0: bool = False
    trust_ad: bool = False
    no_tld_query: bool = False

    @classmethod
    def from_conf(cls, conf: ResolvConf) -> StubOptions:
        values: dict[str, int | bool] = {}
        numbers = {"ndots": RES_MAXNDOTS, "timeout": RES_MAXRETRANS, "attempts": RES_MAXRETRY}
        flags = {"rotate": "rotate", "single-request": "single_request",
                 "single-request-reopen": "single_request_reopen", "use-vc": "use_vc",
                 "edns0": "edns0", "trust-ad": "trust_ad", "no-tld-query": "no_tld_query"}
        for option in conf.options:
            name, sep, value = option.partition(":")
            if name in numbers and sep:
                number = _atoi(value)
                values[name] = min(number, numbers[name])
            elif name in flags:
                values[flags[name]] = True
        return cls(**values)  # type: ignore[arg-type]


def _atoi(text: str) -> int:
    """C ``atoi``: leading digits, 0 when there are none."""
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else 0


def absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _in_domain(name: str, domain: str) -> str:
    domain = domain[1:] if domain.startswith(".") else domain
    return f"{name}.{domain}." if domain else f"{name}."


def search_plan(name: str, searches: Sequence[str],
                opts: StubOptions) -> Generator[str, str, str]:
    """Yield candidate FQDNs; ``send`` each one's outcome; return the final h_errno."""
    dots = name.count(".")
    trailing = name.endswith(".")
    saved: str | None = None
    tried_as_is = False
    last = HOST_NOT_FOUND
    if dots >= opts.ndots or trailing:
        outcome = yield absolute(name)
        if outcome == OK or trailing:
            return h_errno(outcome)
        saved, tried_as_is = h_errno(outcome), True
    searched = root_on_list = got_nodata = got_servfail = False
    if dots == 0 or not trailing:
        for domain in searches:
            searched = True
            root_on_list = root_on_list or domain in ("", ".")
            outcome = yield _in_domain(name, domain)
            last = h_errno(outcome)
            if outcome == OK:
                return OK
            if outcome == ECONNREFUSED:
                return TRY_AGAIN
            if outcome == NO_DATA:
                got_nodata = True
            elif outcome == SERVFAIL:
                got_servfail = True
            elif outcome != HOST_NOT_FOUND:
                break
    if (dots or not searched or not opts.no_tld_query) and not (tried_as_is or root_on_list):
        outcome = yield absolute(name)
        if outcome == OK:
            return OK
        last = h_errno(outcome)
    if saved is not None:
        return saved
    return NO_DATA if got_nodata else TRY_AGAIN if got_servfail else last


def h_errno(outcome: str) -> str:
    return TRY_AGAIN if outcome in (SERVFAIL, TIMEOUT, ECONNREFUSED) else outcome


def candidates(name: str, searches: Sequence[str], opts: StubOptions) -> list[str]:
    """Every name the search tries when each answer is NXDOMAIN, in order."""
    plan = search_plan(name, searches, opts)
    out: list[str] = []
    try:
        out.append(next(plan))
        while True:
            out.append(plan.send(HOST_NOT_FOUND))
    except StopIteration:
        return out


@dataclass(frozen=True, slots=True)
class Header:
    """What glibc reads of an answer: the fixed header."""

    rcode: int
    ancount: int
    arcount: int
    aa: bool
    ra: bool
    tc: bool

    @classmethod
    def of(cls, wire: bytes) -> Header:
        flags = int.from_bytes(wire[2:4], "big")
        return cls(flags & 0x0F, int.from_bytes(wire[6:8], "big"),
                   int.from_bytes(wire[10:12], "big"), bool(flags & 0x0400),
                   bool(flags & 0x0080), bool(flags & 0x0200))


NOERROR, FORMERR, SERVFAIL_RCODE, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5


def classify(first: Header | None, second: Header | None) -> str:
    """``__res_context_query``'s verdict on the answer(s) ``res_send`` returned."""
    hp = first if first is not None else second
    hp2 = second if second is not None else hp
    if hp is None or hp2 is None:
        return TIMEOUT
    if (hp.rcode == NOERROR and hp.ancount) or (hp2.rcode == NOERROR and hp2.ancount):
        return OK
    code = hp.rcode if hp.rcode != NOERROR else hp2.rcode
    if code == NXDOMAIN:
        return HOST_NOT_FOUND
    if code == SERVFAIL_RCODE:
        return SERVFAIL
    if code == NOERROR:
        return NO_DATA
    return NO_RECOVERY
