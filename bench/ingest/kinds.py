"""Every measurement of one data kind in one world: (a) and (b) in rounds, then (c) and (c2),
each of the service's with its CPU time."""

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
    Download,
    measure_download,
    start_recording_session,
    upload_chunks,
    wait_until_stored,
)
from bench.ingest.worlds import CpuTime, World
from bench.measure import megabytes_per_second, percentile


@dataclass(frozen=True)
class KindResult:
    """A data kind's figures in one world; CPU times are per chunk."""

    storage: str
    kind: str
    raw_limit: float
    raw_limit_cpu_seconds: float
    ingest: float
    ingest_ratios: list[float]
    ingest_cpu: CpuTime
    ingest_cpu_ratios: list[float]
    ack_p50_ms: float
    ack_p99_ms: float
    download: float
    download_cpu: CpuTime
    passthrough: float
    passthrough_cpu: CpuTime
    passthrough_zstd_chunks: int
    plain_read: float
    zstd_ratio: float
    chunk_size: int
    check_seconds_per_chunk: float

    def unchecked_share(self, megabytes_per_second: float) -> float:
        """A download's throughput as a share of the same download without the check."""
        seconds = self.chunk_size / megabytes_per_second / 1e6
        return (seconds - self.check_seconds_per_chunk) / seconds


@dataclass(frozen=True)
class IngestRound:
    """(a) and (b) measured back to back; `cpu` is (b)'s per chunk."""

    raw_limit: RawLimit
    megabytes_per_second: float
    cpu: CpuTime
    acks: list[float]
    session_id: str


def median_cpu(times: list[CpuTime]) -> CpuTime:
    return CpuTime(
        statistics.median(spent.service for spent in times),
        statistics.median(spent.server for spent in times),
    )


def measure_ingest_round(
    world: World,
    kind: str,
    chunks: list[bytes],
    digests: list[bytes],
    *,
    token: str,
    directory: Path,
    clients: int,
) -> IngestRound:
    """(a) then (b) on the same chunks, back to back, into a new session."""
    raw_limit = measure_raw_limit(chunks, directory)
    port = world.service.port
    with ApiClient(port, token) as client:
        session_id = start_recording_session(client, kind, len(chunks[0]))
        cpu_before = world.cpu_time()
        started = time.perf_counter()
        acks = upload_chunks(port, token, session_id, chunks, digests, clients=clients)
        wait_until_stored(client, session_id, len(chunks))
        ingest_seconds = time.perf_counter() - started
        cpu = (world.cpu_time() - cpu_before) / len(chunks)
    throughput = megabytes_per_second(sum(map(len, chunks)), ingest_seconds)
    return IngestRound(raw_limit, throughput, cpu, acks, session_id)


def measure_download_cpu(
    world: World,
    client: ApiClient,
    session_id: str,
    digests: list[bytes],
    buffer: memoryview,
    *,
    accept_zstd: bool,
) -> tuple[Download, CpuTime]:
    """`measure_download`, and the CPU time per chunk it cost the service and the server."""
    cpu_before = world.cpu_time()
    download = measure_download(client, session_id, digests, buffer, accept_zstd=accept_zstd)
    return download, (world.cpu_time() - cpu_before) / len(digests)


def measure_kind(
    world: World,
    kind: str,
    chunks: list[bytes],
    *,
    token: str,
    rounds: int,
    clients: int,
) -> KindResult:
    digests = [hashlib.sha256(chunk).digest() for chunk in chunks]
    measured: list[IngestRound] = []
    for round_number in range(1, rounds + 1):
        progress(
            f"{world.storage}, {kind}: round {round_number} of {rounds}:"
            " (a) raw limit, then (b) ingest"
        )
        directory = world.directory / "raw-limit" / kind / str(round_number)
        measured.append(
            measure_ingest_round(
                world, kind, chunks, digests, token=token, directory=directory, clients=clients
            )
        )
    session_id = measured[-1].session_id
    buffer = preallocated_buffer(len(chunks[0]))
    plain_files = write_plain_files(chunks, world.directory / "plain" / kind)
    plain_read = measure_plain_read(plain_files, buffer)
    with ApiClient(world.service.port, token) as client:
        progress(f"{world.storage}, {kind}: (c) download")
        download, download_cpu = measure_download_cpu(
            world, client, session_id, digests, buffer, accept_zstd=False
        )
        progress(f"{world.storage}, {kind}: (c2) zstd passthrough")
        passthrough, passthrough_cpu = measure_download_cpu(
            world, client, session_id, digests, buffer, accept_zstd=True
        )
    raw_limits = [round_.raw_limit for round_ in measured]
    return KindResult(
        storage=world.storage,
        kind=kind,
        raw_limit=statistics.median(limit.megabytes_per_second for limit in raw_limits),
        raw_limit_cpu_seconds=statistics.median(
            limit.cpu_seconds_per_chunk for limit in raw_limits
        ),
        ingest=statistics.median(round_.megabytes_per_second for round_ in measured),
        ingest_ratios=[
            round_.megabytes_per_second / round_.raw_limit.megabytes_per_second
            for round_ in measured
        ],
        ingest_cpu=median_cpu([round_.cpu for round_ in measured]),
        ingest_cpu_ratios=[
            round_.cpu.service / round_.raw_limit.cpu_seconds_per_chunk for round_ in measured
        ],
        ack_p50_ms=percentile([ack for round_ in measured for ack in round_.acks], 0.50) * 1000,
        ack_p99_ms=percentile([ack for round_ in measured for ack in round_.acks], 0.99) * 1000,
        download=download.megabytes_per_second,
        download_cpu=download_cpu,
        passthrough=passthrough.megabytes_per_second,
        passthrough_cpu=passthrough_cpu,
        passthrough_zstd_chunks=passthrough.zstd_encoded_chunks,
        plain_read=plain_read,
        zstd_ratio=raw_limits[-1].zstd_ratio,
        chunk_size=len(chunks[0]),
        check_seconds_per_chunk=measure_check(world.stored_chunks(session_id)),
    )
