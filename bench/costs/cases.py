"""The measured cases: what one operation costs the service (CPU from /proc) and, where bytes
move, its MB/s; and the same for nginx serving a stored file."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.client import API, ApiClient, UnexpectedResponse
from bench.errors import BenchmarkError
from bench.ingest.limits import read_into
from bench.ingest.transfer import chunk_path, put_chunk, wait_until_stored
from bench.measure import megabytes_per_second, process_trees_cpu_seconds

# Sparser than bench.ingest's: wall time is not measured here, only CPU.
PIPELINE_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Cost:
    """One case in one round: CPU seconds per operation, and MB/s where bytes are downloaded."""

    cpu_seconds: float
    megabytes_per_second: float | None = None


def measured(pids: list[int], operations: int, work: Callable[[], float | None]) -> Cost:
    """`work`'s CPU time over the trees of `pids`, per operation, and the MB/s it returns."""
    before = process_trees_cpu_seconds(pids)
    speed = work()
    return Cost((process_trees_cpu_seconds(pids) - before) / operations, speed)


def trivial_requests(client: ApiClient, count: int) -> None:
    """GET /auth/me `count` times: authentication, routing, middleware, rendering, no work."""
    path = f"{API}/auth/me"
    for _ in range(count):
        response = client.send("GET", path)
        body = response.read()
        if response.status != 200:
            raise UnexpectedResponse("GET", path, response.status, body)


def small_chunk_ingest(
    client: ApiClient, session_id: str, chunks: list[bytes], digests: list[bytes]
) -> None:
    """PUT `chunks` one after another into the session, until all are stored."""
    for sequence, (chunk, digest) in enumerate(zip(chunks, digests, strict=True)):
        put_chunk(client, session_id, sequence, chunk, digest)
    wait_until_stored(client, session_id, len(chunks), poll_seconds=PIPELINE_POLL_SECONDS)


def download_paths(session_id: str, count: int) -> list[str]:
    return [f"{chunk_path(session_id, sequence)}/download" for sequence in range(count)]


def downloads(
    client: ApiClient, paths: list[str], digests: list[bytes], buffer: memoryview, count: int
) -> float:
    """GET `paths` in turn, `count` times in all, into `buffer`; return MB/s of the bodies.

    Each body is checked against its path's sha256 outside the clock.
    """
    size, elapsed = 0, 0.0
    for index in range(count):
        path, digest = paths[index % len(paths)], digests[index % len(paths)]
        started = time.perf_counter()
        response = client.send("GET", path)
        if response.status != 200:
            raise UnexpectedResponse("GET", path, response.status, response.read())
        received = read_into(response, buffer)
        elapsed += time.perf_counter() - started
        raw = response.getheader("Content-Encoding") is None
        if not raw or hashlib.sha256(buffer[:received]).digest() != digest:
            raise BenchmarkError(f"GET {path}: the body is not the chunk's raw bytes")
        size += received
    return megabytes_per_second(size, elapsed)
