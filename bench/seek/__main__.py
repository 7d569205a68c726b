"""Command line of the seek benchmark: `python -m bench.seek`."""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
from functools import partial
from pathlib import Path

import bench.seek
from bench.client import ApiClient, obtain_tokens, refreshed_access_token
from bench.harness import SEED, option_parser, progress, run_benchmark
from bench.seek.fill import fill_sessions
from bench.seek.latency import Recording, Samples, measure_block, warm_up
from bench.seek.report import print_report
from bench.service import (
    PASSED_THROUGH_VARIABLES,
    Credentials,
    Processes,
    configure_django,
    free_port,
    migrate,
    service_environment,
    start_gunicorn,
    wait_for_port,
)

KIB = 1024


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = option_parser("python -m bench.seek", bench.seek.__doc__)
    parser.add_argument("--long-chunks", type=int, default=10_000, help="chunks of the long one")
    parser.add_argument("--short-chunks", type=int, default=10, help="chunks of the short one")
    parser.add_argument("--chunk-kib", type=int, default=64, help="chunk size of both, KiB")
    parser.add_argument("--range-kib", type=int, default=64, help="bytes asked per request, KiB")
    parser.add_argument("--requests", type=int, default=2_000, help="timed requests per session")
    parser.add_argument("--rounds", type=int, default=4, help="rounds that measure both sessions")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args(argv)
    if min(options.short_chunks, options.requests, options.rounds, options.workers) < 1:
        parser.error("--short-chunks, --requests, --rounds and --workers must be at least 1")
    if options.range_kib > options.short_chunks * options.chunk_kib:
        parser.error("--range-kib must fit in the short session")
    return options


def measure(
    port: int,
    refresh_token: str,
    recordings: list[Recording],
    pids: list[int],
    options: argparse.Namespace,
) -> list[Samples]:
    """Both sessions' samples, in rounds that alternate which of them goes first."""
    rng = random.Random(SEED)
    length = options.range_kib * KIB
    samples = [Samples(recording) for recording in recordings]
    for number in range(1, options.rounds + 1):
        token = refreshed_access_token(port, refresh_token)
        requests = options.requests // options.rounds + (
            number <= options.requests % options.rounds
        )
        with ApiClient(port, token) as client:
            if number == 1:
                warm_up(client, recordings, rng, length)
            for measured in samples if number % 2 else reversed(samples):
                progress(f"round {number} of {options.rounds}: {measured.recording.label}")
                measure_block(client, measured, rng, requests=requests, length=length, pids=pids)
    return samples


def run(options: argparse.Namespace, workdir: Path, processes: Processes) -> None:
    ignored = [name for name in PASSED_THROUGH_VARIABLES if os.environ.pop(name, None)]
    if ignored:
        progress(f"ignoring {', '.join(ignored)}: the service runs on the embedded default")
    credentials = Credentials(f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    environment = service_environment(
        workdir, port=free_port(0), workers=options.workers, credentials=credentials
    )
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    migrate(environment, logs)
    configure_django(environment)
    chunk_size = options.chunk_kib * KIB
    counts = {"short": options.short_chunks, "long": options.long_chunks}
    ids = fill_sessions(
        owner=credentials.username, chunk_counts=list(counts.values()), chunk_size=chunk_size
    )
    recordings = [
        Recording(label, session_id, index, counts[label], chunk_size)
        for index, (label, session_id) in enumerate(zip(counts, ids, strict=True))
    ]
    server = start_gunicorn(environment, logs, processes)
    wait_for_port(server, environment, logs)
    port = int(environment["PORT"])
    tokens = obtain_tokens(port, credentials)
    short, long = measure(port, tokens.refresh, recordings, [server.pid], options)
    print_report(short, long, options)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    return run_benchmark("bench.seek", partial(run, options), keep_workdir=options.keep)


if __name__ == "__main__":
    sys.exit(main())
