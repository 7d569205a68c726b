"""The ingest benchmark's report: the tables of data kinds in each world, S3 against the
filesystem, and how the run was set up."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import NamedTuple

from bench.ingest.kinds import KindResult
from bench.ingest.worlds import FILESYSTEM, S3, CpuTime
from bench.report import print_machine, print_table
from core.sizes import MIB

Column = tuple[str, Callable[[KindResult], str]]

COLUMNS: list[Column] = [
    ("(a) zstd6+sha256+fsync MB/s", lambda result: f"{result.raw_limit:.1f}"),
    ("(b) ingest MB/s", lambda result: f"{result.ingest:.1f}"),
    ("b/a", lambda result: f"{statistics.median(result.ingest_ratios):.2f}"),
    ("ack p50 ms", lambda result: f"{result.ack_p50_ms:.1f}"),
    ("ack p99 ms", lambda result: f"{result.ack_p99_ms:.1f}"),
    ("(c) download MB/s", lambda result: f"{result.download:.1f}"),
    ("plain read MB/s", lambda result: f"{result.plain_read:.1f}"),
    ("c/read", lambda result: f"{result.download / result.plain_read:.2f}"),
    ("(c2) passthrough MB/s", lambda result: f"{result.passthrough:.1f}"),
    ("c2/read", lambda result: f"{result.passthrough / result.plain_read:.2f}"),
    ("check ms/chunk", lambda result: f"{result.check_seconds_per_chunk * 1000:.2f}"),
    ("c/unchecked", lambda result: f"{result.unchecked_share(result.download):.2f}"),
    ("c2/unchecked", lambda result: f"{result.unchecked_share(result.passthrough):.2f}"),
    ("zstd ratio", lambda result: f"{result.zstd_ratio:.3f}"),
]


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def server_milliseconds(result: KindResult, spent: CpuTime) -> str:
    return milliseconds(spent.server) if result.storage == S3 else "-"


CPU_COLUMNS: list[Column] = [
    ("(a) CPU-ms/chunk", lambda result: milliseconds(result.raw_limit_cpu_seconds)),
    ("(b) CPU-ms/chunk", lambda result: milliseconds(result.ingest_cpu.service)),
    ("b/a CPU", lambda result: f"{statistics.median(result.ingest_cpu_ratios):.2f}"),
    ("(c) CPU-ms/chunk", lambda result: milliseconds(result.download_cpu.service)),
    ("(c2) CPU-ms/chunk", lambda result: milliseconds(result.passthrough_cpu.service)),
    ("S3 server (b)", lambda result: server_milliseconds(result, result.ingest_cpu)),
    ("S3 server (c)", lambda result: server_milliseconds(result, result.download_cpu)),
    ("S3 server (c2)", lambda result: server_milliseconds(result, result.passthrough_cpu)),
]

TRANSFERS: list[tuple[str, Callable[[KindResult], CpuTime]]] = [
    ("ingest", lambda result: result.ingest_cpu),
    ("download", lambda result: result.download_cpu),
    ("passthrough", lambda result: result.passthrough_cpu),
]


INGEST_CPU_TARGET = 1.3


class WorkerMemory(NamedTuple):
    idle: int
    peak: int


def label(result: KindResult) -> str:
    return f"{result.storage} {result.kind}"


def print_s3_against_filesystem(results: list[KindResult]) -> None:
    """Per kind and transfer, the S3 world's CPU per chunk over the filesystem world's."""
    worlds = {(result.storage, result.kind): result for result in results}
    comparisons = []
    for (storage, kind), s3 in worlds.items():
        filesystem = worlds.get((FILESYSTEM, kind))
        if storage != S3 or filesystem is None:
            continue
        ratios = []
        for transfer, cpu in TRANSFERS:
            floor = cpu(filesystem).service
            ratios.append(
                f"{transfer} {cpu(s3).service / floor:.2f}"
                f" ({(cpu(s3).service + cpu(s3).server) / floor:.2f})"
            )
        comparisons.append(f"{kind} " + ", ".join(ratios))
    if comparisons:
        print(
            f"s3/filesystem, service CPU per chunk (with the S3 server's): {'; '.join(comparisons)}"
        )


def print_ingest_cpu_target(results: list[KindResult]) -> None:
    """Each b/a CPU beside issue 19's target for the ingest's CPU over the plain pipeline's."""
    ratios = []
    for result in results:
        ratio = statistics.median(result.ingest_cpu_ratios)
        ratios.append(
            f"{label(result)} {ratio:.2f} ({'met' if ratio <= INGEST_CPU_TARGET else 'not met'})"
        )
    print(f"b/a CPU against the target <= {INGEST_CPU_TARGET}x: {'; '.join(ratios)}")


def print_receive_floor(results: list[KindResult], receive_floors: dict[str, float]) -> None:
    """What receiving a chunk over HTTP alone costs, against (a): how much of the target's
    margin over (a) any service on gunicorn has left for its own work."""
    shares = []
    for kind, seconds in receive_floors.items():
        plain = statistics.median(
            result.raw_limit_cpu_seconds for result in results if result.kind == kind
        )
        left = (INGEST_CPU_TARGET - 1) * plain - seconds
        shares.append(
            f"{kind} {milliseconds(seconds)} ms = {seconds / plain:.2f} x (a), leaving"
            f" {milliseconds(left)} ms a chunk for all else"
        )
    print(
        "HTTP receive floor (gunicorn with the service's worker reading the body into nothing),"
        f" CPU per chunk against (a) and the {INGEST_CPU_TARGET}x target: {'; '.join(shares)}"
    )


def print_report(
    results: list[KindResult],
    options: argparse.Namespace,
    worker_memories: dict[str, WorkerMemory | None],
    receive_floors: dict[str, float],
) -> None:
    print_table("storage, kind", results, label, COLUMNS)
    print()
    print_table("storage, kind", results, label, CPU_COLUMNS)
    print_ingest_cpu_target(results)
    print_receive_floor(results, receive_floors)
    print_s3_against_filesystem(results)
    passed_through = ", ".join(
        f"{label(result)} {result.passthrough_zstd_chunks} of {options.chunks}"
        for result in results
    )
    print(f"(c2) chunks sent as Content-Encoding: zstd: {passed_through}")
    per_round = "; ".join(
        f"{label(result)} "
        + " ".join(
            f"{ratio:.2f}/{cpu_ratio:.2f}"
            for ratio, cpu_ratio in zip(result.ingest_ratios, result.ingest_cpu_ratios, strict=True)
        )
        for result in results
    )
    print(
        "b/a and b/a CPU of each round ((a) and (b) back to back; the tables show the medians):"
        f" {per_round}"
    )
    has_worker = any(memory is not None for memory in worker_memories.values())
    broker = "yes, one Celery worker" if has_worker else "no, tasks in-process"
    print_machine(f"broker: {broker}")
    celery = f", Celery worker concurrency {options.worker_concurrency}" if has_worker else ""
    print(
        f"run: {options.rounds} rounds of {options.chunks} chunks of {options.chunk_mib} MiB"
        f" per kind and storage ({', '.join(options.storage)}),"
        f" {options.workers} gunicorn workers{celery}, {options.clients} client threads"
    )
    chunk_size = options.chunk_mib * MIB
    for storage, memory in worker_memories.items():
        if memory is None:
            continue
        grown = memory.peak - memory.idle
        print(
            f"celery worker memory on {storage}: peak RSS {memory.peak / MIB:.1f} MiB, idle after"
            f" warm-up {memory.idle / MIB:.1f} MiB; growth while processing"
            f" {grown / MIB:.1f} MiB = {grown / chunk_size:.1f} x chunk size"
        )
