"""Command line of the ingest benchmark: `python -m bench.ingest`."""

from __future__ import annotations

import argparse
import secrets
import sys
from functools import partial
from pathlib import Path

import bench.ingest
from bench.client import obtain_tokens
from bench.harness import SEED, option_parser, progress, run_benchmark
from bench.ingest.data import DATA_KINDS
from bench.ingest.kinds import measure_kind
from bench.ingest.report import WorkerMemory, print_report
from bench.ingest.transfer import warm_up
from bench.measure import process_tree_resident_bytes
from bench.service import Credentials, Processes, start_service
from core.sizes import MIB

DEFAULT_CLIENTS = 2


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = option_parser("python -m bench.ingest", bench.ingest.__doc__)
    parser.add_argument("--chunks", type=int, default=24, help="chunks per data kind")
    parser.add_argument("--chunk-mib", type=int, default=10, help="chunk size in MiB")
    parser.add_argument(
        "--clients", type=int, default=DEFAULT_CLIENTS, help="client threads uploading at once"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="(a)+(b) rounds per kind; medians are reported"
    )
    parser.add_argument("--port", type=int, default=0, help="service port (default: a free one)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=2,
        help="processes of the Celery worker, when CELERY_BROKER_URL is set",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def run(options: argparse.Namespace, workdir: Path, processes: Processes) -> None:
    credentials = Credentials(f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    progress(f"starting the service in {workdir}")
    service = start_service(
        workdir,
        processes,
        credentials=credentials,
        port=options.port,
        workers=options.workers,
        worker_concurrency=options.worker_concurrency,
    )
    token = obtain_tokens(service.port, credentials).access
    chunk_size = options.chunk_mib * MIB
    warm_up(service.port, token, clients=options.clients)
    worker_idle_rss = None
    if service.celery_worker is not None:
        worker_idle_rss = process_tree_resident_bytes(service.celery_worker.pid, "VmRSS")
    results = []
    for kind, make_chunks in DATA_KINDS.items():
        progress(f"{kind}: generating {options.chunks} chunks of {options.chunk_mib} MiB")
        chunks = make_chunks(options.chunks, chunk_size, SEED)
        results.append(
            measure_kind(
                kind,
                chunks,
                port=service.port,
                token=token,
                workdir=workdir,
                rounds=options.rounds,
                clients=options.clients,
            )
        )
    worker_memory = None
    if service.celery_worker is not None and worker_idle_rss is not None:
        peak = process_tree_resident_bytes(service.celery_worker.pid, "VmHWM")
        worker_memory = WorkerMemory(idle=worker_idle_rss, peak=peak)
    print_report(results, options, worker_memory)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    return run_benchmark("bench.ingest", partial(run, options), keep_workdir=options.keep)


if __name__ == "__main__":
    sys.exit(main())
