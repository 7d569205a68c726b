"""Figures from measurements: throughputs, percentiles, and the memory and CPU time of processes
from /proc."""

from __future__ import annotations

import math
import os
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


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (gunicorn's workers, a Celery worker's pool)."""
    children = {
        int(child)
        for children_file in Path(f"/proc/{pid}/task").glob("*/children")
        for child in children_file.read_text().split()
    }
    return [pid, *(descendant for child in children for descendant in process_tree(child))]


def process_tree_resident_bytes(pid: int, field: str) -> int:
    """The largest figure among the process and its descendants."""
    return max(resident_bytes(process, field) for process in process_tree(pid))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process (all its threads) so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """The machine's busy and total CPU time so far, summed over its cores, from /proc/stat:
    busy is user, nice, system, irq, softirq and steal; total adds idle and iowait."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    busy = user + nice + system + irq + softirq + steal
    per_second = os.sysconf("SC_CLK_TCK")
    return busy / per_second, (busy + idle + iowait) / per_second


def process_trees_cpu_seconds(pids: list[int]) -> float:
    """CPU time so far of these processes and all their descendants, summed."""
    return sum(cpu_seconds(process) for pid in pids for process in process_tree(pid))


def processes_with_argument(argument: str) -> list[int]:
    """The processes whose command line has `argument` as one of its arguments."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument.encode() in arguments:
            found.append(int(entry.name))
    return found
