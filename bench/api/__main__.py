"""Command line of the API benchmark: `python -m bench.api`."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import bench.api
from bench.api.database import (
    BENCH_USER,
    DATABASE_NAME,
    DATABASE_URL,
    DataShape,
    bench_ids,
    check_server,
    drop_database,
    existing_data,
    recreate_database,
)
from bench.api.fill import generate_data
from bench.api.latency import check_trivial_view, endpoints, measure
from bench.api.plan import DEEP_SESSION_CHUNKS
from bench.api.report import print_report
from bench.client import obtain_tokens
from bench.harness import option_parser, progress, run_benchmark
from bench.service import (
    Processes,
    configure_django,
    free_port,
    migrate,
    service_environment,
    start_gunicorn,
    wait_for_port,
)

GUNICORN_WORKERS = 2


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = option_parser("python -m bench.api", bench.api.__doc__)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions to generate")
    parser.add_argument("--chunks", type=int, default=1_000_000, help="chunks to generate")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--requests", type=int, default=2_000, help="timed requests per endpoint")
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help=f"reuse {DATABASE_NAME} if it holds the data, and keep it afterwards",
    )
    options = parser.parse_args(argv)
    if options.sessions < 2:
        parser.error("--sessions must be at least 2: the deep session and another")
    if options.chunks < DEEP_SESSION_CHUNKS:
        parser.error(f"--chunks must be at least {DEEP_SESSION_CHUNKS:,}, the deep session's")
    if options.clients < 1 or options.requests < 1:
        parser.error("--clients and --requests must be at least 1")
    return options


def bench_environment(workdir: Path, port: int) -> dict[str, str]:
    """The service's environment: the bench database, no broker, REDIS_URL if the caller has one."""
    environment = service_environment(
        workdir, port=port, workers=GUNICORN_WORKERS, credentials=BENCH_USER
    )
    environment["DATABASE_URL"] = DATABASE_URL
    environment.pop("CELERY_BROKER_URL", None)
    return environment


def prepare_database(options: argparse.Namespace, environment: dict[str, str], logs: Path) -> None:
    """A migrated bench database holding the data: kept if asked and complete, else generated."""
    wanted = DataShape(options.sessions, options.chunks, DEEP_SESSION_CHUNKS)
    reuse = options.keep_database and existing_data() == wanted
    if reuse:
        progress(f"reusing database {DATABASE_NAME}")
    else:
        progress(f"creating database {DATABASE_NAME}")
        recreate_database()
    migrate(environment, logs)
    if not reuse:
        progress(f"generating {options.sessions:,} sessions and {options.chunks:,} chunks")
        generate_data(sessions=options.sessions, chunks=options.chunks)


def run(options: argparse.Namespace, workdir: Path, processes: Processes) -> None:
    port = free_port(0)
    environment = bench_environment(workdir, port)
    configure_django(environment)
    logs = workdir / "logs"
    logs.mkdir()
    prepare_database(options, environment, logs)
    session_ids, deep_id = bench_ids()
    progress(f"starting the service in {workdir}")
    server = start_gunicorn(environment, logs, processes)
    wait_for_port(server, environment, logs)
    tokens = obtain_tokens(port, BENCH_USER)
    check_trivial_view(port, tokens.access)
    measured = endpoints(port, tokens.access, session_ids, deep_id)
    latencies = measure(
        port, tokens.refresh, measured, requests=options.requests, clients=options.clients
    )
    print_report(latencies, options, gunicorn_workers=GUNICORN_WORKERS)


def keep_or_drop_database(keep: bool) -> None:
    if keep:
        progress(f"kept database {DATABASE_NAME}")
    else:
        drop_database()


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    return run_benchmark(
        "bench.api",
        partial(run, options),
        check=check_server,
        clean_up=partial(keep_or_drop_database, options.keep_database),
    )


if __name__ == "__main__":
    sys.exit(main())
