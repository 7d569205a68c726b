"""The ingest benchmark's report: the table of data kinds, and how the run was set up."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import NamedTuple

from bench.ingest.kinds import KindResult
from bench.report import print_machine, print_table
from core.sizes import MIB

COLUMNS: list[tuple[str, Callable[[KindResult], str]]] = [
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


class WorkerMemory(NamedTuple):
    idle: int
    peak: int


def print_report(
    results: list[KindResult], options: argparse.Namespace, worker_memory: WorkerMemory | None
) -> None:
    print_table("kind", results, lambda result: result.kind, COLUMNS)
    passed_through = ", ".join(
        f"{result.kind} {result.passthrough_zstd_chunks} of {options.chunks}" for result in results
    )
    print(f"(c2) chunks sent as Content-Encoding: zstd: {passed_through}")
    per_round = "; ".join(
        f"{result.kind} " + " ".join(f"{ratio:.2f}" for ratio in result.ingest_ratios)
        for result in results
    )
    print(f"b/a of each round ((a) and (b) back to back; the table shows the median): {per_round}")
    broker = "yes, one Celery worker" if worker_memory is not None else "no, tasks in-process"
    print_machine(f"broker: {broker}")
    celery = ""
    if worker_memory is not None:
        celery = f", Celery worker concurrency {options.worker_concurrency}"
    print(
        f"run: {options.rounds} rounds of {options.chunks} chunks of {options.chunk_mib} MiB"
        " per kind,"
        f" {options.workers} gunicorn workers{celery}, {options.clients} client threads"
    )
    if worker_memory is not None:
        chunk_size = options.chunk_mib * MIB
        grown = worker_memory.peak - worker_memory.idle
        print(
            f"celery worker memory: peak RSS {worker_memory.peak / MIB:.1f} MiB, idle after"
            f" warm-up {worker_memory.idle / MIB:.1f} MiB; growth while processing"
            f" {grown / MIB:.1f} MiB = {grown / chunk_size:.1f} x chunk size"
        )
