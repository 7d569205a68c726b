"""The API benchmark's report: latencies against the trivial view's, and the targets."""

from __future__ import annotations

import argparse
import os

from bench.api.latency import DEEP_PAGE, ROUNDS, WARM_UP_REQUESTS_PER_CLIENT, Latency
from bench.api.plan import DEEP_SESSION_CHUNKS
from bench.report import print_machine, print_table

RATIO_TARGET = 2.0
STATISTICS_P99_TARGET_MS = 20.0
DEPTH_RATIO_TARGET = 1.25


def print_latencies(latencies: list[Latency]) -> None:
    """The table of endpoints, each p99 also against the trivial view's (the first)."""
    baseline = latencies[0].p99_ms
    columns = [
        ("requests", lambda latency: f"{latency.requests:d}"),
        ("p50 ms", lambda latency: f"{latency.p50_ms:.1f}"),
        ("p99 ms", lambda latency: f"{latency.p99_ms:.1f}"),
        ("p99 / trivial", lambda latency: f"{latency.p99_ms / baseline:.2f}"),
    ]
    print_table("endpoint", latencies, lambda latency: latency.endpoint, columns)


def verdict(holds: bool) -> str:
    return "holds" if holds else "DOES NOT HOLD"


def print_targets(latencies: list[Latency]) -> None:
    trivial, _, first_page, deep_page, statistics = latencies
    worst = max(latencies[1:], key=lambda latency: latency.p99_ms)
    worst_ratio = worst.p99_ms / trivial.p99_ms
    print(
        f"target: every p99 / trivial <= {RATIO_TARGET:g}: {verdict(worst_ratio <= RATIO_TARGET)}"
        f" (highest {worst_ratio:.2f}, {worst.endpoint.strip()})"
    )
    print(
        f"target: statistics p99 < {STATISTICS_P99_TARGET_MS:g} ms:"
        f" {verdict(statistics.p99_ms < STATISTICS_P99_TARGET_MS)} ({statistics.p99_ms:.1f} ms)"
    )
    depth_ratio = deep_page.p99_ms / first_page.p99_ms
    print(
        f"target: page {DEEP_PAGE:,} p99 / page 1 p99 about 1 (<= {DEPTH_RATIO_TARGET:g}),"
        f" independent of depth: {verdict(depth_ratio <= DEPTH_RATIO_TARGET)} ({depth_ratio:.2f})"
    )


def print_report(
    latencies: list[Latency], options: argparse.Namespace, *, gunicorn_workers: int
) -> None:
    print_latencies(latencies)
    print_targets(latencies)
    cache = "redis" if os.environ.get("REDIS_URL") else "file"
    load = ", ".join(f"{average:.1f}" for average in os.getloadavg())
    print_machine(f"cache: {cache}, load average {load} (1, 5, 15 min; this run included)")
    print(
        f"run: {options.sessions:,} sessions, {options.chunks:,} chunks ({DEEP_SESSION_CHUNKS:,}"
        f" in the deep one), {gunicorn_workers} gunicorn workers, {options.clients} client"
        f" threads, {options.requests:,} requests per endpoint in {ROUNDS} rounds after"
        f" {WARM_UP_REQUESTS_PER_CLIENT} warm-up requests per client and endpoint"
    )
