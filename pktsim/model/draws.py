"""One-off draws from named random streams, without keeping the streams.

``Streams.mac(name)`` and ``Streams.hex8(name)`` seed a stream per name and keep it, so that
a second draw continues it.  Allocation draws once per name (a pod's ``eth0`` MAC, its veth
name and MAC): keeping 450,000 seeded generators for a 150,000-pod cluster costs 1 GB and the
time to make them.  ``OneShot`` gives the same values — the same seed for the same name, the
same first draw — from one reused generator.
"""

from __future__ import annotations

import random

from pktsim.core.seeding import stream_seed


class OneShot:
    """The first draw of ``Streams(seed)``'s stream of a name, for names drawn from once."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random()

    def _stream(self, name: str) -> random.Random:
        self._rng.seed(stream_seed(self.seed, name))  # as random.Random(that) is seeded
        return self._rng

    def mac(self, name: str) -> bytes:
        """``Streams(seed).mac(name)``: a locally administered unicast MAC."""
        raw = bytearray(self._stream(f"mac/{name}").getrandbits(48).to_bytes(6, "big"))
        raw[0] = (raw[0] & 0xFE) | 0x02
        return bytes(raw)

    def hex8(self, name: str) -> str:
        """``Streams(seed).hex8(name)``: 8 lower-case hex digits."""
        return f"{self._stream(f'hex/{name}').getrandbits(32):08x}"
