"""One round of a data kind on one service: ingest then download, each with its CPU time."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.client import ApiClient
from bench.errors import BenchmarkError
from bench.ingest.transfer import (
    chunk_path,
    measure_download,
    start_recording_session,
    upload_chunks,
    wait_until_stored,
)
from bench.measure import megabytes_per_second, process_trees_cpu_seconds
from bench.service import Service
from core.encryption import KEY_BYTES, NONCE_BYTES, RECORD_MAX

SEAL_REPETITIONS = 5


class Mode(NamedTuple):
    """A service under test, as named in the report, and the key its chunks must be kept under."""

    name: str
    service: Service
    key_id: str | None


@dataclass(frozen=True)
class Transfer:
    megabytes_per_second: float
    cpu_seconds_per_chunk: float


@dataclass(frozen=True)
class Round:
    ingest: Transfer
    download: Transfer


def check_key(client: ApiClient, session_id: str, mode: Mode) -> None:
    """The first chunk is kept under the mode's key: encryption is on exactly where meant."""
    chunk = client.call("GET", chunk_path(session_id, 0))
    if chunk.get("key_id") != mode.key_id:
        raise BenchmarkError(
            f"the {mode.name} service keeps chunks under key {chunk.get('key_id')!r},"
            f" not {mode.key_id!r}"
        )


def measure_round(
    mode: Mode,
    kind: str,
    chunks: list[bytes],
    digests: list[bytes],
    *,
    token: str,
    buffer: memoryview,
    clients: int,
) -> Round:
    """Ingest the chunks into a new session until stored, then download them all back."""
    port, pids = mode.service.port, mode.service.pids
    size = sum(map(len, chunks))
    with ApiClient(port, token) as client:
        session_id = start_recording_session(client, kind, len(chunks[0]))
        cpu_before = process_trees_cpu_seconds(pids)
        started = time.perf_counter()
        upload_chunks(port, token, session_id, chunks, digests, clients=clients)
        wait_until_stored(client, session_id, len(chunks))
        elapsed = time.perf_counter() - started
        ingest_cpu = process_trees_cpu_seconds(pids) - cpu_before
        check_key(client, session_id, mode)
        cpu_before = process_trees_cpu_seconds(pids)
        download = measure_download(client, session_id, digests, buffer, accept_zstd=False)
        download_cpu = process_trees_cpu_seconds(pids) - cpu_before
    return Round(
        ingest=Transfer(megabytes_per_second(size, elapsed), ingest_cpu / len(chunks)),
        download=Transfer(download.megabytes_per_second, download_cpu / len(chunks)),
    )


def seal_seconds(chunk: bytes) -> float:
    """The floor: AES-256-GCM over `chunk` in records of the sealed format, on one core here."""
    cipher = AESGCM(AESGCM.generate_key(bit_length=KEY_BYTES * 8))
    nonce = bytes(NONCE_BYTES)
    view = memoryview(chunk)
    timings = []
    for _ in range(SEAL_REPETITIONS):
        started = time.perf_counter()
        for start in range(0, len(view), RECORD_MAX):
            cipher.encrypt(nonce, view[start : start + RECORD_MAX], b"")
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)
