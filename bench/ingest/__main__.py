"""Command line of the ingest benchmark: `python -m bench.ingest`."""

from __future__ import annotations

import argparse
import secrets
import sys
from functools import partial
from pathlib import Path

import bench.ingest
from bench.client import obtain_tokens
from bench.harness import SEED, option_parser, progress, run_benchmark, service_options_add
from bench.ingest.data import DATA_KINDS
from bench.ingest.kinds import KindResult, measure_kind
from bench.ingest.receive_floor import measure_receive_floor
from bench.ingest.report import WorkerMemory, print_report
from bench.ingest.transfer import warm_up
from bench.ingest.worlds import S3, STORAGES, World, world_started
from bench.measure import process_tree_resident_bytes
from bench.s3 import check_weed
from bench.service import Credentials, Processes
from core.sizes import MIB

DEFAULT_CLIENTS = 2


def storages(text: str) -> list[str]:
    """A comma-separated list of STORAGES, each once, in the order given."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(STORAGES))
    if unknown or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expected one or more of {', '.join(STORAGES)}, each once, comma-separated;"
            f" got {text!r}"
        )
    return names


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
    parser.add_argument(
        "--storage",
        type=storages,
        default=list(STORAGES),
        help="where the service keeps chunks and spool, one world after the other"
        f" (default: {','.join(STORAGES)})",
    )
    service_options_add(parser)
    options = parser.parse_args(argv)
    if min(options.chunks, options.chunk_mib, options.rounds, options.clients) < 1:
        parser.error("--chunks, --chunk-mib, --rounds and --clients must be at least 1")
    return options


def measure_world(
    world: World,
    chunk_sets: dict[str, list[bytes]],
    credentials: Credentials,
    options: argparse.Namespace,
) -> tuple[list[KindResult], WorkerMemory | None]:
    """Every data kind on the world's service, and its Celery worker's memory (if it has one)."""
    token = obtain_tokens(world.service.port, credentials).access
    warm_up(world.service.port, token, clients=options.clients)
    worker = world.service.celery_worker
    worker_idle_rss = None if worker is None else process_tree_resident_bytes(worker.pid, "VmRSS")
    results = [
        measure_kind(
            world, kind, chunks, token=token, rounds=options.rounds, clients=options.clients
        )
        for kind, chunks in chunk_sets.items()
    ]
    if worker is None or worker_idle_rss is None:
        return results, None
    peak = process_tree_resident_bytes(worker.pid, "VmHWM")
    return results, WorkerMemory(idle=worker_idle_rss, peak=peak)


def run(options: argparse.Namespace, workdir: Path, processes: Processes) -> None:
    credentials = Credentials(f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    chunk_sets = {}
    for kind, make_chunks in DATA_KINDS.items():
        progress(f"{kind}: generating {options.chunks} chunks of {options.chunk_mib} MiB")
        chunk_sets[kind] = make_chunks(options.chunks, options.chunk_mib * MIB, SEED)
    receive_floors = {
        kind: measure_receive_floor(
            chunks,
            workdir / "receive-floor" / kind,
            workers=options.workers,
            clients=options.clients,
            rounds=options.rounds,
        )
        for kind, chunks in chunk_sets.items()
    }
    results: list[KindResult] = []
    worker_memories: dict[str, WorkerMemory | None] = {}
    for storage in options.storage:
        with world_started(
            storage, workdir / storage, processes, credentials=credentials, options=options
        ) as world:
            world_results, worker_memories[storage] = measure_world(
                world, chunk_sets, credentials, options
            )
        results += world_results
    print_report(results, options, worker_memories, receive_floors)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    check = check_weed if S3 in options.storage else None
    return run_benchmark(
        "bench.ingest", partial(run, options), check=check, keep_workdir=options.keep
    )


if __name__ == "__main__":
    sys.exit(main())
