"""The costs benchmark's report: each case's CPU per operation and MB/s, then each case against
its floor of the same run, beside the issue's target."""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass

from bench.costs.cases import Cost
from bench.report import print_machine, print_table, world_description


@dataclass(frozen=True)
class Comparison:
    """A case against its floor: by CPU per operation (at most `target` times the floor's) or by
    MB/s (at least `target` times the floor's)."""

    case: str
    floor: str
    by_speed: bool
    target: float

    def ratios(self, rounds: dict[str, list[Cost]]) -> list[float]:
        """The case over its floor, round by round."""
        pairs = zip(rounds[self.case], rounds[self.floor], strict=True)
        if self.by_speed:
            return [case.megabytes_per_second / floor.megabytes_per_second for case, floor in pairs]
        return [case.cpu_seconds / floor.cpu_seconds for case, floor in pairs]

    def ratio(self, rounds: dict[str, list[Cost]]) -> float:
        return statistics.median(self.ratios(rounds))

    def cpu_ratio(self, rounds: dict[str, list[Cost]]) -> str:
        """Median CPU per operation over the floor's; "-" when the floor's is below a tick."""
        floor = statistics.median(cost.cpu_seconds for cost in rounds[self.floor])
        case = statistics.median(cost.cpu_seconds for cost in rounds[self.case])
        return f"{case / floor:.1f}" if floor else "-"

    def target_text(self) -> str:
        return f"{'>=' if self.by_speed else '<='} {self.target:g}x"

    def met(self, rounds: dict[str, list[Cost]]) -> str:
        ratio = self.ratio(rounds)
        return "yes" if (ratio >= self.target if self.by_speed else ratio <= self.target) else "no"


def median_cpu_milliseconds(costs: list[Cost]) -> str:
    return f"{statistics.median(cost.cpu_seconds for cost in costs) * 1000:.2f}"


def median_speed(costs: list[Cost]) -> str:
    speeds = [cost.megabytes_per_second for cost in costs if cost.megabytes_per_second is not None]
    return f"{statistics.median(speeds):.1f}" if speeds else "-"


def per_round(ratios: list[float]) -> str:
    return " ".join(f"{ratio:.2f}" for ratio in ratios)


def print_report(
    rounds: dict[str, list[Cost]],
    comparisons: list[Comparison],
    *,
    options: argparse.Namespace,
    broker: bool,
    nginx_note: str,
    algorithms: str,
) -> None:
    print_table(
        "case",
        list(rounds),
        str,
        [
            ("CPU-ms/op", lambda case: median_cpu_milliseconds(rounds[case])),
            ("MB/s", lambda case: median_speed(rounds[case])),
        ],
    )
    print()
    measured = [comparison for comparison in comparisons if comparison.floor in rounds]
    print_table(
        "case / floor (same run)",
        measured,
        lambda comparison: f"{comparison.case} / {comparison.floor}",
        [
            ("ratio", lambda comparison: f"{comparison.ratio(rounds):.2f}"),
            ("  by", lambda comparison: "MB/s" if comparison.by_speed else "CPU"),
            ("   target", Comparison.target_text),
            ("met", lambda comparison: comparison.met(rounds)),
            ("CPU ratio", lambda comparison: comparison.cpu_ratio(rounds)),
            ("per round", lambda comparison: per_round(comparison.ratios(rounds))),
        ],
    )
    for comparison in comparisons:
        if comparison.floor not in rounds:
            print(f"{comparison.case}: no nginx floor, skipped ({nginx_note})")
    print(f"nginx: {nginx_note}; stored algorithms of the 10 MiB chunks: {algorithms}")
    load = ", ".join(f"{average:.1f}" for average in os.getloadavg())
    print_machine(
        f"{world_description(broker)}, load average {load} (1, 5, 15 min; this run included)"
    )
    print(
        f"run: {options.rounds} rounds; per round {options.requests} trivial requests and 64 KiB"
        f" downloads, {options.small_chunks} chunks of 64 KiB, {options.large_downloads} downloads"
        f" of each 10 MiB case; {options.workers} gunicorn workers, one client connection"
    )
