"""The seeded bytes of the benchmark's chunks, the same in the fill and in the checks."""

from __future__ import annotations

import random

from bench.harness import SEED


def chunk_bytes(session_index: int, sequence: int, size: int) -> bytes:
    """The random (incompressible) bytes of chunk `sequence` of the `session_index`-th session."""
    return random.Random(f"{SEED}/{session_index}/{sequence}").randbytes(size)


def recording_bytes(session_index: int, chunk_size: int, start: int, end: int) -> bytes:
    """Bytes `start`..`end` (inclusive) of a session's recording, from its chunks' bytes."""
    first, last = start // chunk_size, end // chunk_size
    chunks = range(first, last + 1)
    joined = b"".join(chunk_bytes(session_index, sequence, chunk_size) for sequence in chunks)
    offset = first * chunk_size
    return joined[start - offset : end - offset + 1]
