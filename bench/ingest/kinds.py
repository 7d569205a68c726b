"""Every measurement of one data kind: (a) and (b) in rounds, then (c) and (c2)."""

from __future__ import annotations

import hashlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.client import ApiClient
from bench.harness import progress
from bench.ingest.limits import (
    RawLimit,
    measure_check,
    measure_plain_read,
    measure_raw_limit,
    preallocated_buffer,
    write_plain_files,
)
from bench.ingest.transfer import (
    measure_download,
    start_recording_session,
    upload_chunks,
    wait_until_stored,
)
from bench.measure import megabytes_per_second, percentile
from bench.service import chunk_store_path


@dataclass(frozen=True)
class KindResult:
    kind: str
    raw_limit: float
    ingest: float
    ingest_ratios: list[float]
    ack_p50_ms: float
    ack_p99_ms: float
    download: float
    passthrough: float
    passthrough_zstd_chunks: int
    plain_read: float
    zstd_ratio: float
    chunk_size: int
    check_seconds_per_chunk: float

    def unchecked_share(self, megabytes_per_second: float) -> float:
        """A download's throughput as a share of the same download without the check."""
        seconds = self.chunk_size / megabytes_per_second / 1e6
        return (seconds - self.check_seconds_per_chunk) / seconds


def measure_ingest_round(
    kind: str,
    chunks: list[bytes],
    digests: list[bytes],
    *,
    port: int,
    token: str,
    directory: Path,
    clients: int,
) -> tuple[RawLimit, float, list[float], str]:
    """(a) then (b) on the same chunks, back to back; returns (a), (b) MB/s, acks, the session."""
    raw_limit = measure_raw_limit(chunks, directory)
    with ApiClient(port, token) as client:
        session_id = start_recording_session(client, kind, len(chunks[0]))
        started = time.perf_counter()
        acks = upload_chunks(port, token, session_id, chunks, digests, clients=clients)
        wait_until_stored(client, session_id, len(chunks))
        ingest_seconds = time.perf_counter() - started
    return raw_limit, megabytes_per_second(sum(map(len, chunks)), ingest_seconds), acks, session_id


def measure_kind(
    kind: str,
    chunks: list[bytes],
    *,
    port: int,
    token: str,
    workdir: Path,
    rounds: int,
    clients: int,
) -> KindResult:
    digests = [hashlib.sha256(chunk).digest() for chunk in chunks]
    raw_limits: list[float] = []
    ingests: list[float] = []
    acks: list[float] = []
    for round_number in range(1, rounds + 1):
        progress(f"{kind}: round {round_number} of {rounds}: (a) raw limit, then (b) ingest")
        raw_limit, ingest, round_acks, session_id = measure_ingest_round(
            kind,
            chunks,
            digests,
            port=port,
            token=token,
            directory=workdir / "raw-limit" / kind / str(round_number),
            clients=clients,
        )
        raw_limits.append(raw_limit.megabytes_per_second)
        ingests.append(ingest)
        acks += round_acks
    buffer = preallocated_buffer(len(chunks[0]))
    plain_read = measure_plain_read(write_plain_files(chunks, workdir / "plain" / kind), buffer)
    with ApiClient(port, token) as client:
        progress(f"{kind}: (c) download")
        download = measure_download(client, session_id, digests, buffer, accept_zstd=False)
        progress(f"{kind}: (c2) zstd passthrough")
        passthrough = measure_download(client, session_id, digests, buffer, accept_zstd=True)
    stored = sorted(chunk_store_path(workdir).joinpath(session_id).glob("[!.]*"))
    check_seconds_per_chunk = measure_check(stored) / len(stored)
    return KindResult(
        kind=kind,
        raw_limit=statistics.median(raw_limits),
        ingest=statistics.median(ingests),
        ingest_ratios=[b / a for a, b in zip(raw_limits, ingests, strict=True)],
        ack_p50_ms=percentile(acks, 0.50) * 1000,
        ack_p99_ms=percentile(acks, 0.99) * 1000,
        download=download.megabytes_per_second,
        passthrough=passthrough.megabytes_per_second,
        passthrough_zstd_chunks=passthrough.zstd_encoded_chunks,
        plain_read=plain_read,
        zstd_ratio=raw_limit.zstd_ratio,
        chunk_size=len(chunks[0]),
        check_seconds_per_chunk=check_seconds_per_chunk,
    )
