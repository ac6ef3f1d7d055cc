"""String syntaxes of the Kubernetes API and of pktsim's kinds, as :data:`fields.Check` functions.

Each check returns ``None`` for a good string, else ``(message, what would be valid)``.  The
rules are apimachinery's (``IsDNS1123Label``, ``IsDNS1123Subdomain``, ``IsDNS1035Label``,
``IsValidPortName``, ``IsQualifiedName``, ``IsValidLabelValue``) and Go's
``time.ParseDuration`` / RFC 3339.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_LABEL_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_PORT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_DNS_NAME_LABEL = re.compile(r"[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?\Z")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_MAX_CHARS = 64
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
            "m": 60 * 10**9, "h": 3600 * 10**9}

MAX_NS = 2**63 - 1
DURATION_VALID = "a duration like 0ms, 250us, 1.5s, 2m (units ns us ms s m h) or an integer of ms"


def dns_label(text: str) -> tuple[str, str] | None:
    """RFC 1123 label: namespaces, container names, hostnames."""
    if len(text) <= 63 and _LABEL.match(text):
        return None
    return ("is not a valid DNS label",
            "at most 63 lowercase letters, digits and '-', starting and ending alphanumeric")


def dns1035_label(text: str) -> tuple[str, str] | None:
    """RFC 1035 label: Service names (they must start with a letter)."""
    if len(text) <= 63 and _LABEL_1035.match(text):
        return None
    return ("is not a valid RFC 1035 label",
            "at most 63 lowercase letters, digits and '-', starting with a letter and ending "
            "alphanumeric")


def dns_subdomain(text: str) -> tuple[str, str] | None:
    """RFC 1123 subdomain: names of pods, nodes, workloads, EndpointSlices."""
    if len(text) <= 253 and all(_LABEL.match(part) for part in text.split(".")):
        return None
    return ("is not a valid DNS subdomain",
            "at most 253 characters of lowercase letters, digits, '-' and '.', each "
            "dot-separated part starting and ending alphanumeric")


def port_name(text: str) -> tuple[str, str] | None:
    """IANA_SVC_NAME: named container ports and string ``targetPort``s."""
    ok = (len(text) <= 15 and _PORT_NAME.match(text) is not None and "--" not in text
          and any(c.isalpha() for c in text))
    if ok:
        return None
    return ("is not a valid port name",
            "an IANA service name: at most 15 lowercase letters, digits and '-', with at least "
            "one letter, no leading, trailing or double '-'")


def label_key(text: str) -> tuple[str, str] | None:
    """A qualified name, optionally prefixed by a DNS subdomain: ``app.kubernetes.io/name``."""
    prefix, slash, name = text.rpartition("/")
    ok = len(name) <= 63 and _QUALIFIED.match(name) is not None
    if slash:
        ok = ok and bool(prefix) and dns_subdomain(prefix) is None
    if ok:
        return None
    return ("is not a valid label key",
            "[PREFIX/]NAME: NAME at most 63 letters, digits, '-', '_', '.', starting and ending "
            "alphanumeric; PREFIX a DNS subdomain")


def label_value(text: str) -> tuple[str, str] | None:
    if text == "" or (len(text) <= 63 and _QUALIFIED.match(text)):
        return None
    return ("is not a valid label value",
            "empty or at most 63 letters, digits, '-', '_', '.', starting and ending "
            "alphanumeric")


def domain_name(text: str) -> tuple[str, str] | None:
    """A DNS name as a resolver takes it: ``web.shop``, ``_http._tcp.web.``, ``example.com``."""
    body = text[:-1] if text.endswith(".") else text
    ok = (0 < len(body) <= 253
          and all(len(p) <= 63 and _DNS_NAME_LABEL.match(p) for p in body.split(".")))
    if ok:
        return None
    return ("is not a valid DNS name",
            "dot-separated labels of at most 63 letters, digits, '-' and '_', 253 characters "
            "in all, optionally ending in '.'")


def interface_name(text: str) -> tuple[str, str] | None:
    """A Linux network interface name (``dev_valid_name``)."""
    bad = (not text or len(text) > 15 or text in (".", "..")
           or any(c == "/" or c == ":" or c.isspace() for c in text))
    if not bad:
        return None
    return ("is not a valid interface name",
            "1-15 characters without '/', ':' or whitespace")


def parse_duration(value: str) -> int | None:
    """Go-style duration (``1.5s``, ``250us``, ``1m30s``) in nanoseconds; None if invalid."""
    pos, total = 0, Fraction(0)
    if value == "0":
        return 0
    if not value or len(value) > _DURATION_MAX_CHARS:  # Fraction() of 4,300+ digits raises
        return None
    while pos < len(value):
        match = _DURATION_PART.match(value, pos)
        if match is None:
            return None
        total += Fraction(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if total.denominator != 1 or total > MAX_NS:
        return None
    return int(total)


def parse_rfc3339(value: str) -> int | None:
    """An RFC 3339 timestamp in nanoseconds since the Unix epoch; None if invalid."""
    match = _RFC3339.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        stamp = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError:
        return None
    zone = match.group(8)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        stamp -= sign * timedelta(hours=hours, minutes=minutes)
    fraction = (match.group(7) or ".")[1:]
    if len(fraction) > 9 or second > 60:
        return None
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    seconds = (stamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
    return (seconds + (second == 60)) * 10**9 + nanos
