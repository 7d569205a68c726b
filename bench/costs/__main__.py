"""Command line of the costs benchmark: `python -m bench.costs`."""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import bench.costs
from bench.client import API, ApiClient, obtain_tokens, refreshed_access_token
from bench.costs.cases import (
    Cost,
    download_paths,
    downloads,
    measured,
    small_chunk_ingest,
    trivial_requests,
)
from bench.costs.nginx import Nginx, find_or_install_nginx, serve_file, start_nginx
from bench.costs.report import Comparison, print_report
from bench.harness import SEED, option_parser, progress, run_benchmark, service_options_add
from bench.ingest.data import random_chunks, screen_chunks
from bench.ingest.limits import preallocated_buffer
from bench.ingest.transfer import start_recording_session, upload_chunks, wait_until_stored, warm_up
from bench.ingest.worlds import FILESYSTEM, World, world_started
from bench.service import Credentials, Processes, chunk_store_path, free_port
from core.sizes import MIB

SMALL_CHUNK_SIZE = 64 * 1024
# nginx spends about 1 CPU-ms on a 10 MiB file: more downloads, for enough 10 ms ticks.
NGINX_DOWNLOADS_FACTOR = 10
LARGE_CHUNK_SIZE = 10 * MIB

IDLE = "idle service, for 1 s"
IDLE_SECONDS = 1.0
TRIVIAL = "GET /auth/me (trivial view)"
SMALL_INGEST = "64 KiB chunk ingest, PUT to stored"
SMALL_DOWNLOAD = "64 KiB chunk download"
LARGE_NONE = "10 MiB chunk download, stored none"
LARGE_ZSTD = "10 MiB chunk download, stored zstd, decoded"
NGINX = "nginx, the 10 MiB none chunk's file"

COMPARISONS = [
    Comparison(SMALL_INGEST, TRIVIAL, by_speed=False, target=4),
    Comparison(SMALL_DOWNLOAD, TRIVIAL, by_speed=False, target=2),
    Comparison(LARGE_NONE, NGINX, by_speed=True, target=0.7),
    Comparison(LARGE_ZSTD, NGINX, by_speed=True, target=0.35),
]


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = option_parser("python -m bench.costs", bench.costs.__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every case; medians")
    parser.add_argument(
        "--requests", type=int, default=200, help="trivial requests and 64 KiB downloads a round"
    )
    parser.add_argument("--small-chunks", type=int, default=40, help="64 KiB chunks a round")
    parser.add_argument(
        "--large-downloads", type=int, default=10, help="downloads of each 10 MiB case a round"
    )
    service_options_add(parser)
    options = parser.parse_args(argv)
    if min(options.rounds, options.requests, options.small_chunks, options.large_downloads) < 1:
        parser.error("--rounds, --requests, --small-chunks and --large-downloads must be >= 1")
    return options


@dataclass(frozen=True)
class StoredChunks:
    """Chunks uploaded into a session of their size, and the algorithms they were stored with."""

    chunks: list[bytes]
    digests: list[bytes]
    session_id: str
    algorithms: list[str]

    @property
    def paths(self) -> list[str]:
        return download_paths(self.session_id, len(self.chunks))


def store_chunks(world: World, token: str, chunks: list[bytes]) -> StoredChunks:
    port = world.service.port
    digests = [hashlib.sha256(chunk).digest() for chunk in chunks]
    with ApiClient(port, token) as client:
        session_id = start_recording_session(client, "downloads", len(chunks[0]))
        upload_chunks(port, token, session_id, chunks, digests, clients=1)
        wait_until_stored(client, session_id, len(chunks))
        algorithms = [
            client.call("GET", f"{API}/sessions/{session_id}/chunks/{sequence}")["algorithm"]
            for sequence in range(len(chunks))
        ]
    return StoredChunks(chunks, digests, session_id, algorithms)


def stored_file(world: World, session_id: str, sequence: int) -> Path:
    """The chunk store's file of a chunk (sequence order is name order)."""
    return sorted(chunk_store_path(world.directory).joinpath(session_id).glob("[!.]*"))[sequence]


def measure_round(
    world: World,
    token: str,
    *,
    small: StoredChunks,
    large: StoredChunks,
    nginx: tuple[Nginx, str] | None,
    options: argparse.Namespace,
) -> dict[str, Cost]:
    """Every case once, one after another, on one client connection (nginx on its own).

    `large` holds a chunk stored as none, then one stored with zstd; nginx serves the first's file.
    """
    port, pids = world.service.port, world.service.pids
    small_buffer = preallocated_buffer(SMALL_CHUNK_SIZE)
    large_buffer = preallocated_buffer(LARGE_CHUNK_SIZE)
    requests, large_downloads = options.requests, options.large_downloads
    with ApiClient(port, token) as client:
        small_session = start_recording_session(client, "small", SMALL_CHUNK_SIZE)
        costs = {
            IDLE: measured(pids, 1, partial(time.sleep, IDLE_SECONDS)),
            TRIVIAL: measured(pids, requests, partial(trivial_requests, client, requests)),
            SMALL_INGEST: measured(
                pids,
                len(small.chunks),
                partial(small_chunk_ingest, client, small_session, small.chunks, small.digests),
            ),
            SMALL_DOWNLOAD: measured(
                pids,
                requests,
                partial(downloads, client, small.paths, small.digests, small_buffer, requests),
            ),
        }
        for case, index in ((LARGE_NONE, 0), (LARGE_ZSTD, 1)):
            paths, digests = large.paths[index : index + 1], large.digests[index : index + 1]
            costs[case] = measured(
                pids,
                large_downloads,
                partial(downloads, client, paths, digests, large_buffer, large_downloads),
            )
    if nginx is not None:
        server, path = nginx
        count = large_downloads * NGINX_DOWNLOADS_FACTOR
        with ApiClient(server.port) as client:
            costs[NGINX] = measured(
                [server.master.pid],
                count,
                partial(downloads, client, [path], large.digests[:1], large_buffer, count),
            )
    return costs


def run(options: argparse.Namespace, workdir: Path, processes: Processes) -> None:
    credentials = Credentials(f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    progress("generating chunks: 64 KiB and 10 MiB screen frames, 10 MiB random bytes")
    small_chunks = screen_chunks(options.small_chunks, SMALL_CHUNK_SIZE, SEED)
    large_chunks = [
        *random_chunks(1, LARGE_CHUNK_SIZE, SEED),
        *screen_chunks(1, LARGE_CHUNK_SIZE, SEED),
    ]
    nginx_executable, nginx_note = find_or_install_nginx()
    rounds: dict[str, list[Cost]] = {}
    with world_started(
        FILESYSTEM, workdir / FILESYSTEM, processes, credentials=credentials, options=options
    ) as world:
        port = world.service.port
        tokens = obtain_tokens(port, credentials)
        warm_up(port, tokens.access, clients=1)
        small = store_chunks(world, tokens.access, small_chunks)
        large = store_chunks(world, tokens.access, large_chunks)
        nginx = None
        if nginx_executable is not None:
            server = start_nginx(nginx_executable, workdir / "nginx", free_port(0), processes)
            nginx = (server, serve_file(server, stored_file(world, large.session_id, 0)))
        for round_number in range(1, options.rounds + 1):
            progress(f"round {round_number} of {options.rounds}")
            token = refreshed_access_token(port, tokens.refresh)
            measured_round = measure_round(
                world, token, small=small, large=large, nginx=nginx, options=options
            )
            for case, cost in measured_round.items():
                rounds.setdefault(case, []).append(cost)
        broker = world.service.celery_worker is not None
    print_report(
        rounds,
        COMPARISONS,
        options=options,
        broker=broker,
        nginx_note=nginx_note,
        algorithms=", ".join(large.algorithms),
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    return run_benchmark("bench.costs", partial(run, options), keep_workdir=options.keep)


if __name__ == "__main__":
    sys.exit(main())
