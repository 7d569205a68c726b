"""The encryption benchmark's report: each service's figures, then what encryption costs."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench.encryption.rounds import Round, Transfer
from bench.report import print_machine, print_table

Measure = Callable[[Round], Transfer]


def ingest(measured: Round) -> Transfer:
    return measured.ingest


def download(measured: Round) -> Transfer:
    return measured.download


LIMITS: dict[str, tuple[Measure, float]] = {"ingest": (ingest, 0.10), "download": (download, 0.15)}


@dataclass(frozen=True)
class KindResult:
    """A data kind's rounds on both services (the i-th of each measured back to back), and the
    floor: seconds to seal one chunk with AES-256-GCM in this process."""

    kind: str
    plain: list[Round]
    encrypted: list[Round]
    seal_seconds_per_chunk: float


@dataclass(frozen=True)
class ModeRow:
    """One service's medians for a data kind."""

    label: str
    rounds: list[Round]

    def megabytes_per_second(self, measure: Measure) -> str:
        return f"{statistics.median(measure(r).megabytes_per_second for r in self.rounds):.1f}"

    def cpu_ms_per_chunk(self, measure: Measure) -> str:
        cpu = statistics.median(measure(r).cpu_seconds_per_chunk for r in self.rounds)
        return f"{cpu * 1000:.1f}"


@dataclass(frozen=True)
class CostRow:
    """What encryption costs one measure of a data kind, round by round, against its limit."""

    label: str
    throughput_costs: list[float]
    cpu_costs: list[float]
    extra_cpu_seconds: list[float]
    limit: float

    @classmethod
    def of(cls, result: KindResult, name: str) -> CostRow:
        measure, limit = LIMITS[name]
        pairs = [
            (measure(plain), measure(encrypted))
            for plain, encrypted in zip(result.plain, result.encrypted, strict=True)
        ]
        return cls(
            label=f"{result.kind} {name}",
            throughput_costs=[
                1 - e.megabytes_per_second / p.megabytes_per_second for p, e in pairs
            ],
            cpu_costs=[e.cpu_seconds_per_chunk / p.cpu_seconds_per_chunk - 1 for p, e in pairs],
            extra_cpu_seconds=[e.cpu_seconds_per_chunk - p.cpu_seconds_per_chunk for p, e in pairs],
            limit=limit,
        )

    def verdict(self, costs: list[float]) -> str:
        return "PASS" if statistics.median(costs) <= self.limit else "OVER"


def percent(share: float) -> str:
    return f"{share * 100:+.1f}%"


MODE_COLUMNS: list[tuple[str, Callable[[ModeRow], str]]] = [
    ("ingest MB/s", lambda row: row.megabytes_per_second(ingest)),
    ("ingest CPU-ms/chunk", lambda row: row.cpu_ms_per_chunk(ingest)),
    ("download MB/s", lambda row: row.megabytes_per_second(download)),
    ("download CPU-ms/chunk", lambda row: row.cpu_ms_per_chunk(download)),
]

COST_COLUMNS: list[tuple[str, Callable[[CostRow], str]]] = [
    ("throughput cost", lambda row: percent(statistics.median(row.throughput_costs))),
    ("limit", lambda row: f"{row.limit * 100:.0f}%"),
    ("verdict", lambda row: row.verdict(row.throughput_costs)),
    ("CPU cost", lambda row: percent(statistics.median(row.cpu_costs))),
    ("verdict", lambda row: row.verdict(row.cpu_costs)),
    ("extra CPU-ms/chunk", lambda row: f"{statistics.median(row.extra_cpu_seconds) * 1000:.1f}"),
]


def print_report(results: list[KindResult], options: argparse.Namespace) -> None:
    modes = [
        ModeRow(f"{result.kind} {name}", rounds)
        for result in results
        for name, rounds in (("plain", result.plain), ("encrypted", result.encrypted))
    ]
    print_table("kind, service", modes, lambda row: row.label, MODE_COLUMNS)
    print()
    costs = [CostRow.of(result, name) for result in results for name in LIMITS]
    print_table("kind, measure", costs, lambda row: row.label, COST_COLUMNS)
    per_round = "; ".join(
        f"{row.label} "
        + " ".join(
            f"{percent(throughput)}/{percent(cpu)}"
            for throughput, cpu in zip(row.throughput_costs, row.cpu_costs, strict=True)
        )
        for row in costs
    )
    print(f"cost/CPU cost of each round (the table shows the medians): {per_round}")
    floors = ", ".join(
        f"{result.kind} {result.seal_seconds_per_chunk * 1000:.2f}" for result in results
    )
    print(f"floor: AES-256-GCM over one chunk's raw bytes, this process, one core, ms: {floors}")
    print_machine("both services on the embedded default (SQLite, tasks in-process)")
    print(
        f"run: {options.rounds} rounds of {options.chunks} chunks of {options.chunk_mib} MiB per"
        f" kind and service, {options.workers} gunicorn workers each,"
        f" {options.clients} client threads"
    )
