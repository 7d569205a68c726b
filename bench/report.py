"""The printed report of a benchmark: a table of its rows, and the machine it ran on."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from typing import TypeVar

Row = TypeVar("Row")


def print_table(
    label_title: str,
    rows: Sequence[Row],
    label: Callable[[Row], str],
    columns: Sequence[tuple[str, Callable[[Row], str]]],
) -> None:
    """A line a row: its label left-aligned, then each cell right-aligned to its column title."""
    width = max(len(label_title), *(len(label(row)) for row in rows))
    print("  ".join([label_title.ljust(width), *(title for title, _ in columns)]))
    for row in rows:
        cells = [cell(row).rjust(len(title)) for title, cell in columns]
        print("  ".join([label(row).ljust(width), *cells]))


def print_machine(details: str) -> None:
    """The machine line: CPUs, platform and Python, then the benchmark's own `details`."""
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python"
        f" {platform.python_version()}, {details}"
    )


def world_description(broker: bool) -> str:
    """The service's database (from DATABASE_URL) and where its tasks run."""
    database = os.environ.get("DATABASE_URL", "").partition(":")[0] or "SQLite (embedded default)"
    tasks = "one Celery worker" if broker else "tasks in-process"
    return f"database: {database}, broker: {'yes, ' if broker else 'no, '}{tasks}"
