"""``kind: Traffic`` (pktsim/v1alpha1): the flows to run, checked for syntax, not resolved.

- ``name`` defaults to ``flow-<n>``, n counting every flow of every Traffic document from 1.
- ``protocol`` is ``tcp`` | ``udp`` | ``icmp`` (any case).  A ``http://`` URL target implies
  ``tcp``.  A lookup's ``protocol`` is the DNS transport: ``udp`` (default) or ``tcp``.
- ``payload``: an integer n gives n bytes of the repeating pattern ``abcdefghijklmnopqrstuvwxyz``
  (readable in Wireshark, and a cut-off shows where); a string is sent as its UTF-8 bytes.  At
  most 65507 bytes for ``udp`` and ``icmp`` (one IPv4 datagram), 64 MiB for ``tcp``.
- ``start``: a Go-style duration (``0ms``, ``250us``, ``1.5s``, ``1m30s``) or an integer of
  milliseconds.
- ``ttl``: the IP TTL of the flow's packets, 1-255 (default: the kernel's 64).
- ``interval``: a duration like ``start``: the gap between a flow's connections or lookups
  (after one ends, before the next opens), datagrams or echo requests.  Unset, each client
  keeps its own: 1 ms between connections, 1 s between lookups, datagrams and echo requests.
- ``count`` with ``lookup``: that many lookups one after another, ``interval`` apart.
- ``family`` (``IPv4`` | ``IPv6``): which address of a ``NAMESPACE/POD`` or ``node:NAME``
  target (unset: the primary one, ``status.podIP``); checked against the cluster's and the
  pod's families once the stream is read (``pktsim.scenario.families``).
- An IPv6 literal target is written as a URL writes it (RFC 3986 section 3.2.2):
  ``[fd00:10:244:1::2]:8080``, ``http://[fd00:10:244:1::2]:8080/``; a bare
  ``fd00:10:244:1::2`` has no port (for ``icmp``).  ``Flow.target`` keeps the text as written.
- ``sourcePort`` (lookups only, 1-65535): the resolver's socket is bound to that port for
  every lookup of the flow, as a long-lived stub keeps its socket; unset, each lookup opens a
  socket on a new ephemeral port, as glibc does (``send_dg`` in resolv/res_send.c).
"""

from __future__ import annotations

import re

from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.model.objects import Flow, Source
from pktsim.scenario.fields import Ctx, Obj, ip_of, wrong_type
from pktsim.scenario.inject import read_injection
from pktsim.scenario.syntax import (
    DURATION_VALID,
    MAX_NS,
    dns_label,
    dns_subdomain,
    domain_name,
    parse_duration,
)

FIELDS = ("name", "from", "to", "protocol", "count", "payload", "start", "lookup", "type",
          "ttl", "frame", "interface", "interval", "sourcePort", "family")
FAMILIES = ("IPv4", "IPv6")
QTYPES = ("A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "ANY")
PATTERN = b"abcdefghijklmnopqrstuvwxyz"
MAX_DATAGRAM = 65507
MAX_STREAM = 64 * 2**20
MAX_COUNT = 1_000_000
SOURCE_VALID = "NAMESPACE/POD[/CONTAINER], node:NAME or external[:NAME]"
TARGET_VALID = ("a DNS name, an IPv4 address, [an IPv6 address], localhost, NAMESPACE/POD or "
                "node:NAME, each with an optional :PORT, a bare IPv6 address, or a URL "
                "http://HOST[:PORT]/PATH")
_PORT = re.compile(r":(\d+)\Z")


def pattern(size: int) -> bytes:
    """``size`` bytes of the payload pattern."""
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


def source_problem(text: str) -> tuple[str, str] | None:
    """Why ``text`` is no flow source, or None when it is one."""
    head, colon, rest = text.partition(":")
    if head == "external" and (not colon or dns_label(rest) is None):
        return None
    if head == "node" and colon and dns_subdomain(rest) is None:
        return None
    parts = text.split("/")
    checks = [dns_label, dns_subdomain, dns_label][: len(parts)]
    if len(parts) in (2, 3) and all(check(p) is None for check, p in zip(checks, parts,
                                                                         strict=True)):
        return None
    return "is not a valid flow source", SOURCE_VALID


def split_target(text: str) -> tuple[str, str | None] | None:
    """``(host, port digits or None)`` of a target (a URL's host and port), IPv6 literals
    unbracketed; None when the syntax is wrong.  A bare IPv6 address has no port: its last
    group is not one (``fd00::2``)."""
    hostport = text.split("://", 1)[1].split("/", 1)[0] if "://" in text else text
    if hostport.startswith("["):
        host, close, rest = hostport[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            return None
        literal = ip_of(host)
        if literal is None or literal.version != 6:
            return None
        return host, rest[1:] if rest else None
    literal = ip_of(hostport)
    if literal is not None and literal.version == 6:
        return (hostport, None) if "://" not in text else None  # a URL needs the brackets
    port = _PORT.search(hostport)
    if port is None:
        return hostport, None
    return hostport[:port.start()], port.group(1)


def target_host(text: str) -> str:
    """The host part of a target as ``split_target`` reads it (``""`` when it cannot)."""
    found = split_target(text)
    return "" if found is None else found[0]


def target_problem(text: str) -> tuple[str, str] | None:
    """Why ``text`` is no flow target, or None when its syntax is fine."""
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme.lower() != "http":
            return f"uses the scheme {scheme!r}", "an http:// URL (TLS is not modelled)"
        if ip_of(rest.split("/", 1)[0]) is not None and ":" in rest.split("/", 1)[0]:
            return "has an IPv6 address without brackets", "http://[IPv6]:PORT/PATH"
    found = split_target(text)
    if found is None or not found[0] or any(c.isspace() for c in text):
        return "is not a valid target", TARGET_VALID
    port = found[1]
    if port is not None and (len(port) > 5 or not 1 <= int(port) <= 65535):
        return "has a port out of range", "a port 1-65535"
    return None


def read_traffic(doc: Obj, source: Source, numbers: list[int]) -> list[tuple[str, Flow]]:
    """The ``(field path, flow)``s of one document; ``numbers[0]`` counts flows across them."""
    doc.unknown_keys(("apiVersion", "kind", "metadata", "spec"))
    spec = doc.mapping("spec")
    spec.unknown_keys(("flows", "events"))  # events: pktsim.scenario.events
    out: list[tuple[str, Flow]] = []
    for path, item in spec.sequence("flows", required=not spec.has("events")):
        numbers[0] += 1
        if not isinstance(item, dict):
            wrong_type(doc.ctx, path, item, "a mapping (one flow)")
            continue
        flow = read_flow(Obj(doc.ctx, path, item), numbers[0], source)
        flow.path = path
        out.append((path, flow))
    return out


def read_flow(obj: Obj, number: int, source: Source) -> Flow:
    obj.unknown_keys(FIELDS)
    if obj.has("frame") or obj.has("interface"):
        return read_injection(obj, number, source)
    flow = Flow(name=obj.string("name", f"flow-{number}", check=_flow_name),
                source_ref=obj.string("from", required=True, check=source_problem,
                                      valid=SOURCE_VALID), source=source)
    flow.lookup = obj.string("lookup", check=domain_name, valid="a DNS name")
    flow.target = obj.string("to", check=target_problem, valid=TARGET_VALID)
    if obj.has("lookup") and obj.has("to"):
        obj.ctx.error(obj.at("to"), flow.target, "is given with lookup",
                      "either to (a connection) or lookup (a DNS query), not both")
    elif not obj.has("lookup") and not obj.has("to"):
        obj.missing("to", f"{TARGET_VALID}; or lookup: NAME for a DNS query")
    flow.protocol = _protocol(obj, flow)
    if obj.has("type") and not obj.has("lookup"):
        obj.ctx.error(obj.at("type"), obj.raw("type"), "is only for lookups", "lookup: NAME")
    flow.qtype = obj.choice("type", QTYPES, "A", fold=True)
    flow.count = obj.integer("count", 1, 1, MAX_COUNT)
    flow.payload = _payload(obj, flow)
    flow.start_ns = _start(obj)
    flow.ttl = obj.optional_int("ttl", 1, 255)
    if obj.has("interval"):
        flow.interval_ns = read_duration(obj, "interval")
    if obj.has("sourcePort") and not obj.has("lookup"):
        obj.ctx.error(obj.at("sourcePort"), obj.raw("sourcePort"), "is only for lookups",
                      "lookup: NAME")
    flow.source_port = obj.optional_int("sourcePort", 1, 65535)
    flow.family = _family(obj, flow)
    return flow


def _family(obj: Obj, flow: Flow) -> str:
    """``family``: for the targets that have an address per family (a pod, a node); an IP
    literal has its own, which must agree."""
    family = obj.choice("family", FAMILIES, "")
    if not family:
        return ""
    host = target_host(flow.target)
    literal = ip_of(host)
    if literal is not None:
        if f"IPv{literal.version}" != family:
            obj.ctx.error(obj.at("family"), family, f"does not match the target "
                          f"{flow.target}, an IPv{literal.version} address",
                          f"IPv{literal.version}, or no family")
            return ""
        return family
    if flow.lookup or not (host.startswith("node:") or _pod_ref(host)):
        obj.ctx.error(obj.at("family"), family, "is only for a NAMESPACE/POD or node:NAME "
                      "target", "no family (a DNS name's address is getaddrinfo's choice)")
        return ""
    return family


def _pod_ref(host: str) -> bool:
    parts = host.split("/")
    return len(parts) == 2 and dns_label(parts[0]) is None and dns_subdomain(parts[1]) is None


def _flow_name(text: str) -> tuple[str, str] | None:
    if text and text.isprintable() and len(text) <= 253:
        return None
    return "is not a valid flow name", "1-253 printable characters"


def _protocol(obj: Obj, flow: Flow) -> str:
    if obj.has("lookup"):
        return obj.choice("protocol", ("udp", "tcp"), "udp", fold=True)
    if isinstance(obj.raw("protocol"), str) and obj.raw("protocol").lower() == "sctp":
        obj.ctx.error(obj.at("protocol"), obj.raw("protocol"), "is not modelled: pktsim sends "
                      "no SCTP packet (Service ports with protocol SCTP are written into "
                      "kube-proxy's rules all the same)", "tcp | udp | icmp")
        return "tcp"
    protocol = obj.choice("protocol", ("tcp", "udp", "icmp"), "tcp", fold=True)
    if "://" in flow.target and protocol != "tcp":
        obj.ctx.error(obj.at("protocol"), protocol, "does not carry a URL", "tcp (or no protocol)")
        return "tcp"
    found = split_target(flow.target)
    if protocol == "icmp" and found is not None and found[1] is not None:
        obj.ctx.error(obj.at("to"), flow.target, "has a port, which ICMP does not use",
                      "a target without :PORT")
    return protocol


def _payload(obj: Obj, flow: Flow) -> bytes:
    value = obj.raw("payload")
    if value is None:
        return b""
    path = obj.at("payload")
    if obj.has("lookup"):
        obj.ctx.error(path, value, "is not used by lookups", "no payload with lookup")
        return b""
    limit = MAX_STREAM if flow.protocol == "tcp" else MAX_DATAGRAM
    if isinstance(value, int) and not isinstance(value, bool):
        data = pattern(min(max(value, 0), limit))
        if not 0 <= value <= limit:
            obj.ctx.error(path, value, "is out of range", f"0-{limit} bytes for {flow.protocol}")
        return data
    if not isinstance(value, str):
        wrong_type(obj.ctx, path, value, f"a size in bytes (0-{limit}) or a string")
        return b""
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        obj.ctx.error(path, value, "is not valid Unicode text", "a UTF-8 string")
        return b""
    if len(data) > limit:
        obj.ctx.error(path, value, f"is {len(data)} bytes long", f"at most {limit} bytes for "
                      f"{flow.protocol}")
    return data


def _start(obj: Obj) -> int:
    return read_duration(obj, "start")


def read_duration(obj: Obj, key: str) -> int:
    """``key`` as virtual nanoseconds: a Go-style duration or an integer of milliseconds
    (0 when unset or wrong, the problem recorded).  ``start``, ``interval`` and the ``at``
    of ``spec.events`` are all read so, so one moment is written one way everywhere."""
    value = obj.raw(key)
    if value is None:
        return 0
    path = obj.at(key)
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value * 10**6 <= MAX_NS:
            return value * 10**6
        obj.ctx.error(path, value, "is out of range", "0 or more milliseconds")
        return 0
    if not isinstance(value, str):
        wrong_type(obj.ctx, path, value, DURATION_VALID)
        return 0
    nanos = parse_duration(value.strip())
    if nanos is None:
        obj.ctx.error(path, value, "is not a valid duration", DURATION_VALID)
        return 0
    return nanos


def make_flow(spec: dict[str, object], *, fields: dict[str, str] | None = None) -> Flow:
    """One flow from a mapping written as an entry of ``kind: Traffic`` (``from``, ``to``,
    ``lookup``, ``protocol``, ``count``, ``payload``, ``start``, ``interval``, ``type``,
    ``ttl``, ``sourcePort``, ``name``):
    the same checks and defaults as the loader, so a flow made in Python or by the CLI is
    never one a scenario file could not hold.  Errors name the field (``fields`` renames
    them: the CLI's ``to`` is ``--to``); several problems raise ``ScenarioErrors``.
    """
    source = Source("<flow>", 0, "Traffic", "")
    errors: list[ScenarioError] = []
    flow = read_flow(Obj(Ctx("<flow>", source, errors, []), "", spec), 1, source)
    flow.source = None
    if not errors:
        return flow
    named = [_renamed(e, fields or {}) for e in errors]
    raise named[0] if len(named) == 1 else ScenarioErrors(named)


def _renamed(e: ScenarioError, fields: dict[str, str]) -> ScenarioError:
    head = e.field.split(".", 1)[0].split("[", 1)[0]
    return ScenarioError(e.message, field=fields.get(head, head) + e.field[len(head):],
                         value=e.value, valid=e.valid)
