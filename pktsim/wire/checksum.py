"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624)."""

from __future__ import annotations

import sys
from array import array

_LITTLE = sys.byteorder == "little"


def ones_sum(data: bytes) -> int:
    """The 16-bit one's-complement sum of ``data`` (big-endian words, odd byte padded)."""
    if len(data) & 1:
        data = data + b"\x00"
    words = array("H", data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    if _LITTLE:  # one's-complement sums commute with a byte swap of every word
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data``: the complement of its one's-complement sum."""
    return (~ones_sum(data)) & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The one's-complement sum of the IPv4 pseudo-header TCP and UDP checksums cover."""
    total = ((src[0] << 8) | src[1]) + ((src[2] << 8) | src[3])
    total += ((dst[0] << 8) | dst[1]) + ((dst[2] << 8) | dst[3])
    total += proto + length
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    """TCP/UDP checksum over pseudo-header + segment (checksum field zeroed by the caller)."""
    total = pseudo_header_sum(src, dst, proto, len(segment)) + ones_sum(segment)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def update16(old_csum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word changes from ``old`` to ``new``."""
    total = (~old_csum & 0xFFFF) + (~old & 0xFFFF) + new
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF
