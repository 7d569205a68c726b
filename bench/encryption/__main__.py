"""Command line of the encryption benchmark: `python -m bench.encryption`."""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
from functools import partial
from pathlib import Path

import bench.encryption
from bench.client import obtain_tokens, refreshed_access_token
from bench.encryption.report import KindResult, print_report
from bench.encryption.rounds import Mode, Round, measure_round, seal_seconds
from bench.harness import SEED, option_parser, progress, run_benchmark
from bench.ingest.data import DATA_KINDS
from bench.ingest.limits import preallocated_buffer
from bench.ingest.transfer import warm_up
from bench.service import PASSED_THROUGH_VARIABLES, Credentials, Processes, start_service
from core.encryption import generate_key_line
from core.sizes import MIB

KEY_ID = "bench"


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = option_parser("python -m bench.encryption", bench.encryption.__doc__)
    parser.add_argument("--chunks", type=int, default=8, help="chunks per data kind and round")
    parser.add_argument("--chunk-mib", type=int, default=10, help="chunk size in MiB")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds per kind and service; medians are reported"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of each service")
    parser.add_argument("--clients", type=int, default=2, help="client threads uploading at once")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args(argv)
    if options.chunks < 1 or options.chunk_mib < 1 or options.rounds < 1:
        parser.error("--chunks, --chunk-mib and --rounds must be at least 1")
    return options


def start_modes(
    workdir: Path, options: argparse.Namespace, credentials: Credentials, processes: Processes
) -> list[Mode]:
    """The plain service and the encrypted one, each in its own directory under `workdir`."""
    encryption = {
        "LUCID_ENCRYPTION_KEYS": generate_key_line(KEY_ID),
        "LUCID_ENCRYPTION_ACTIVE_KEY": KEY_ID,
    }
    modes = []
    for name, key_id, environment in (("plain", None, {}), ("encrypted", KEY_ID, encryption)):
        progress(f"starting the {name} service in {workdir / name}")
        service = start_service(
            workdir / name,
            processes,
            credentials=credentials,
            port=0,
            workers=options.workers,
            extra_environment=environment,
        )
        modes.append(Mode(name, service, key_id))
    return modes


def measure_kind(
    kind: str,
    chunks: list[bytes],
    modes: list[Mode],
    refresh_tokens: dict[str, str],
    options: argparse.Namespace,
) -> KindResult:
    """Rounds of both services back to back, which goes first alternating round by round."""
    digests = [hashlib.sha256(chunk).digest() for chunk in chunks]
    buffer = preallocated_buffer(len(chunks[0]))
    rounds: dict[str, list[Round]] = {mode.name: [] for mode in modes}
    for number in range(1, options.rounds + 1):
        for mode in modes if number % 2 else reversed(modes):
            progress(f"{kind}: round {number} of {options.rounds}: {mode.name}")
            token = refreshed_access_token(mode.service.port, refresh_tokens[mode.name])
            rounds[mode.name].append(
                measure_round(
                    mode, kind, chunks, digests, token=token, buffer=buffer, clients=options.clients
                )
            )
    return KindResult(kind, rounds["plain"], rounds["encrypted"], seal_seconds(chunks[0]))


def run(options: argparse.Namespace, workdir: Path, processes: Processes) -> None:
    ignored = [name for name in PASSED_THROUGH_VARIABLES if os.environ.pop(name, None)]
    if ignored:
        progress(f"ignoring {', '.join(ignored)}: each service runs on its own embedded default")
    credentials = Credentials(f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    modes = start_modes(workdir, options, credentials, processes)
    refresh_tokens = {}
    for mode in modes:
        tokens = obtain_tokens(mode.service.port, credentials)
        warm_up(mode.service.port, tokens.access, clients=options.clients)
        refresh_tokens[mode.name] = tokens.refresh
    results = []
    for kind, make_chunks in DATA_KINDS.items():
        progress(f"{kind}: generating {options.chunks} chunks of {options.chunk_mib} MiB")
        chunks = make_chunks(options.chunks, options.chunk_mib * MIB, SEED)
        results.append(measure_kind(kind, chunks, modes, refresh_tokens, options))
    print_report(results, options)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    return run_benchmark("bench.encryption", partial(run, options), keep_workdir=options.keep)


if __name__ == "__main__":
    sys.exit(main())
