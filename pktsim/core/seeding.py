"""Named random streams: every random choice draws from a stream named after what it decides.

A stream's seed is ``sha256(f"{seed}/{name}")``, so adding a pod on one node does not shift the
choices made for another (docs/architecture.md, "Determinism").  ``random.Random`` is stable
across CPython versions for ``getrandbits``/``random``, which is all pktsim uses.
"""

from __future__ import annotations

import hashlib
import random


def stream_digest(seed: int, name: str) -> bytes:
    """The 32-byte digest a stream named ``name`` of run seed ``seed`` is seeded from."""
    return hashlib.sha256(f"{seed}/{name}".encode()).digest()


def stream_seed(seed: int, name: str) -> int:
    """The integer ``random.Random`` of the stream ``name`` is seeded with (128 bits)."""
    return int.from_bytes(stream_digest(seed, name)[:16], "big")


class Streams:
    """The named streams of one run seed; a stream, once made, continues where it left off."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def stream(self, name: str) -> random.Random:
        rng = self._streams.get(name)
        if rng is None:
            rng = random.Random(stream_seed(self.seed, name))
            self._streams[name] = rng
        return rng

    def mac(self, name: str) -> bytes:
        """A random locally administered unicast MAC, as the kernel's ``eth_random_addr``."""
        raw = bytearray(self.stream(f"mac/{name}").getrandbits(48).to_bytes(6, "big"))
        raw[0] = (raw[0] & 0xFE) | 0x02
        return bytes(raw)

    def hex8(self, name: str) -> str:
        """8 lower-case hex digits from 4 random bytes (``RandomVethName``)."""
        return f"{self.stream(f'hex/{name}').getrandbits(32):08x}"
