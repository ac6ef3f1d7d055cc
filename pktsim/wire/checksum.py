"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624)."""

from __future__ import annotations


def ones_sum(data: bytes) -> int:
    """The 16-bit one's-complement sum of ``data`` (big-endian words, odd byte padded).

    Computed as the data read as one big-endian integer, modulo 0xFFFF: 2**16 is 1 modulo
    0xFFFF, so every word counts once, and the end-around carry is the modulus; a non-zero
    multiple of 0xFFFF folds to 0xFFFF, not 0 (only all-zero data sums to 0).  Three times
    faster than summing the words in Python."""
    if len(data) & 1:
        data = data + b"\x00"
    n = int.from_bytes(data, "big")
    total = n % 0xFFFF
    return 0xFFFF if total == 0 and n else total


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data``: the complement of its one's-complement sum."""
    return (~ones_sum(data)) & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The one's-complement sum of the pseudo-header TCP, UDP and ICMPv6 checksums cover:
    IPv4's (RFC 793), or IPv6's for 16-byte addresses (RFC 8200 §8.1: the addresses, a
    32-bit upper-layer length and the next header -- the same sum, word for word)."""
    if len(src) == 16:
        total = ones_sum(src + dst) + (length >> 16) + (length & 0xFFFF) + proto
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return total
    total = ((src[0] << 8) | src[1]) + ((src[2] << 8) | src[3])
    total += ((dst[0] << 8) | dst[1]) + ((dst[2] << 8) | dst[3])
    total += proto + length
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    """TCP/UDP (and ICMPv6) checksum over pseudo-header + segment (checksum field zeroed by
    the caller)."""
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
