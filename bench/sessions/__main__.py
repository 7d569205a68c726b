"""Command line of the sessions benchmark: `python -m bench.sessions`."""

from __future__ import annotations

import argparse
import secrets
import sys
from functools import partial
from pathlib import Path

import bench.sessions
from bench.client import obtain_tokens, refreshed_access_token
from bench.harness import SEED, option_parser, progress, run_benchmark, service_options_add
from bench.ingest.data import screen_chunks
from bench.ingest.transfer import warm_up
from bench.ingest.worlds import FILESYSTEM, world_started
from bench.service import Credentials, Processes
from bench.sessions.load import StepLoad, run_step, start_sessions
from bench.sessions.report import passed, print_report

DEFAULT_SESSIONS = "25,50,100,200,300,400,500,600"
PAYLOADS = 256


def session_counts(text: str) -> list[int]:
    """A comma-separated list of increasing numbers of sessions."""
    try:
        counts = [int(number) for number in text.split(",") if number.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or counts != sorted(set(counts)):
        raise argparse.ArgumentTypeError(f"expected increasing positive numbers; got {text!r}")
    return counts


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = option_parser("python -m bench.sessions", bench.sessions.__doc__)
    parser.add_argument(
        "--sessions-list",
        type=session_counts,
        default=session_counts(DEFAULT_SESSIONS),
        help=f"numbers of sessions to try, in turn, until one fails (default: {DEFAULT_SESSIONS})",
    )
    parser.add_argument("--max", type=int, default=None, help="try no more sessions than this")
    parser.add_argument("--seconds", type=int, default=60, help="seconds each step lasts")
    parser.add_argument("--append-kib", type=int, default=64, help="KiB of each append")
    parser.add_argument(
        "--chunk-kib",
        type=int,
        default=10 * 1024,
        help="chunk size of the sessions in KiB (default: the service's default, 10 MiB)",
    )
    parser.add_argument(
        "--connections", type=int, default=128, help="client connections at most (one a thread)"
    )
    service_options_add(parser)
    options = parser.parse_args(argv)
    if options.max is not None:
        options.sessions_list = [count for count in options.sessions_list if count <= options.max]
    if not options.sessions_list:
        parser.error("--max leaves no number of sessions to try")
    if min(options.seconds, options.append_kib, options.chunk_kib, options.connections) < 1:
        parser.error("--seconds, --append-kib, --chunk-kib and --connections must be >= 1")
    return options


def run(options: argparse.Namespace, workdir: Path, processes: Processes) -> None:
    credentials = Credentials(f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    append_size = options.append_kib * 1024
    progress(f"generating {PAYLOADS} screen-like appends of {options.append_kib} KiB")
    payloads = screen_chunks(PAYLOADS, append_size, SEED)
    steps: list[StepLoad] = []
    with world_started(
        FILESYSTEM, workdir / FILESYSTEM, processes, credentials=credentials, options=options
    ) as world:
        port, pids = world.service.port, world.service.pids
        tokens = obtain_tokens(port, credentials)
        warm_up(port, tokens.access, clients=2)
        for count in options.sessions_list:
            token = refreshed_access_token(port, tokens.refresh)
            progress(f"{count} sessions: starting them")
            session_ids = start_sessions(port, token, count, options.chunk_kib * 1024)
            progress(f"{count} sessions: appending for {options.seconds} s")
            step = run_step(
                port,
                token,
                pids,
                session_ids,
                payloads=payloads,
                seconds=options.seconds,
                connections=min(count, options.connections),
            )
            steps.append(step)
            if not passed(step):
                break
        broker = world.service.celery_worker is not None
    connections = f"{min(options.sessions_list[0], options.connections)} to {options.connections}"
    print_report(steps, options=options, connections=connections, broker=broker)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    return run_benchmark("bench.sessions", partial(run, options), keep_workdir=options.keep)


if __name__ == "__main__":
    sys.exit(main())
