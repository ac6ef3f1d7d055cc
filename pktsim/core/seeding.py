"""Named random streams' seeds: every random choice draws from a stream named after what it
decides, seeded ``sha256(f"{seed}/{name}")``, so adding a pod on one node does not shift the
choices made for another (docs/architecture.md, "Determinism")."""

from __future__ import annotations

import hashlib


def stream_digest(seed: int, name: str) -> bytes:
    """The 32-byte digest a stream named ``name`` of run seed ``seed`` is seeded from."""
    return hashlib.sha256(f"{seed}/{name}".encode()).digest()


def stream_seed(seed: int, name: str) -> int:
    """The integer ``random.Random`` of the stream ``name`` is seeded with (128 bits)."""
    return int.from_bytes(stream_digest(seed, name)[:16], "big")
