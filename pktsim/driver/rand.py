"""Named random streams: every random choice draws from a stream named after what it decides.

A stream's seed is ``sha256(f"{seed}/{name}")``, so adding a pod on one node does not shift the
choices made for another (docs/architecture.md).  ``random.Random`` is stable across CPython
versions for ``getrandbits``/``random``, which is all pktsim uses.
"""

from __future__ import annotations

import hashlib
import random


class Streams:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def stream(self, name: str) -> random.Random:
        rng = self._streams.get(name)
        if rng is None:
            digest = hashlib.sha256(f"{self.seed}/{name}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:16], "big"))
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
