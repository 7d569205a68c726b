"""Running a benchmark: its command line, progress lines, scratch directory and clean-up."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.errors import BenchmarkError
from bench.service import Processes, stop_processes

SEED = 20240601


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def option_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A parser for `prog`, described by the first line of its package's docstring."""
    return argparse.ArgumentParser(prog=prog, description=(doc or "").partition("\n")[0])


def service_options_add(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark that starts the service: port, workers, --keep."""
    parser.add_argument("--port", type=int, default=0, help="service port (default: a free one)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=2,
        help="processes of the Celery worker, when CELERY_BROKER_URL is set",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")


def exit_on_sigterm(signal_number: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so that `run_benchmark` still stops and cleans up."""
    raise SystemExit(128 + signal_number)


def run_benchmark(
    name: str,
    run: Callable[[Path, Processes], None],
    *,
    check: Callable[[], None] | None = None,
    clean_up: Callable[[], None] | None = None,
    keep_workdir: bool = False,
) -> int:
    """Run `run` in a fresh scratch directory; return the exit status.

    `check` comes first, before anything is started or needs cleaning up. Whatever `run` appends
    to its process list is stopped at the end, however it ends; then `clean_up` is called and the
    directory removed unless `keep_workdir`. A BenchmarkError is printed as `name: message`.
    """
    try:
        if check is not None:
            check()
    except BenchmarkError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix=f"lucid-{name.replace('.', '-')}-"))
    processes: Processes = []
    try:
        run(workdir, processes)
    except BenchmarkError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    finally:
        stop_processes(processes)
        if clean_up is not None:
            clean_up()
        if keep_workdir:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
