"""Figures from measurements: throughputs, percentiles, and the memory of processes from /proc."""

from __future__ import annotations

import math
from pathlib import Path

from bench.errors import BenchmarkError


def megabytes_per_second(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: with few values, p99 is the slowest one."""
    ranked = sorted(values)
    return ranked[max(math.ceil(fraction * len(ranked)) - 1, 0)]


def resident_bytes(pid: int, field: str) -> int:
    """A resident-memory figure of the process from /proc: VmRSS (now) or VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise BenchmarkError(f"/proc/{pid}/status has no {field}")


def process_tree_resident_bytes(pid: int, field: str) -> int:
    """The largest figure among the process and its children (a Celery worker's pool)."""
    children = {
        int(child)
        for children_file in Path(f"/proc/{pid}/task").glob("*/children")
        for child in children_file.read_text().split()
    }
    return max(resident_bytes(process, field) for process in [pid, *children])
