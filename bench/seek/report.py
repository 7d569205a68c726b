"""The seek benchmark's report: each session's latencies and CPU, and the long/short ratio."""

from __future__ import annotations

import argparse
import os

from bench.report import print_machine, print_table
from bench.seek.latency import Samples

P99_RATIO_TARGET = 1.3

COLUMNS = [
    ("chunks", lambda samples: f"{samples.recording.chunks:,}"),
    ("requests", lambda samples: f"{len(samples.latencies):,}"),
    ("p50 ms", lambda samples: f"{samples.p50_ms:.2f}"),
    ("p99 ms", lambda samples: f"{samples.p99_ms:.2f}"),
    ("CPU-ms/request", lambda samples: f"{samples.cpu_ms_per_request:.2f}"),
]


def print_report(short: Samples, long: Samples, options: argparse.Namespace) -> None:
    print_table("session", [short, long], lambda samples: samples.recording.label, COLUMNS)
    p99_ratio = long.p99_ms / short.p99_ms
    verdict = "PASS" if p99_ratio <= P99_RATIO_TARGET else "OVER"
    print(
        f"long/short: p99 {p99_ratio:.2f} (target <= {P99_RATIO_TARGET:g}: {verdict}),"
        f" p50 {long.p50_ms / short.p50_ms:.2f},"
        f" CPU-ms/request {long.cpu_ms_per_request / short.cpu_ms_per_request:.2f}"
    )
    load = ", ".join(f"{average:.1f}" for average in os.getloadavg())
    print_machine(
        "embedded default (SQLite, local filesystem, tasks in-process),"
        f" load average {load} (1, 5, 15 min; this run included)"
    )
    print(
        f"run: {options.requests:,} requests of {options.range_kib} KiB per session in"
        f" {options.rounds} rounds, chunks of {options.chunk_kib} KiB, one keep-alive connection,"
        f" {options.workers} gunicorn worker(s)"
    )
