"""Chunks through the service's HTTP API: recording sessions, uploads, the pipeline, downloads."""

from __future__ import annotations

import base64
import hashlib
import http.client
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import zstandard

from bench.client import API, ApiClient, UnexpectedResponse
from bench.errors import BenchmarkError
from bench.ingest.limits import READ_PIECE_SIZE, ZSTD_LEVEL, read_into
from bench.measure import megabytes_per_second

PIPELINE_TIMEOUT_SECONDS = 300
# Each poll costs the service about a trivial request's CPU, counted in the ingest's.
PIPELINE_POLL_SECONDS = 0.05
WARM_UP_CHUNKS = 8
WARM_UP_CHUNK_SIZE = 64 * 1024


def start_recording_session(client: ApiClient, kind: str, chunk_size: int) -> str:
    session = client.call(
        "POST",
        f"{API}/sessions",
        {
            "name": f"bench-{kind}",
            "chunk_size": chunk_size,
            "compression_algorithm": "zstd",
            "compression_level": ZSTD_LEVEL,
        },
        expected=201,
    )
    client.call("POST", f"{API}/sessions/{session['id']}/start")
    return session["id"]


def chunk_path(session_id: str, sequence: int) -> str:
    return f"{API}/sessions/{session_id}/chunks/{sequence}"


def put_chunk(
    client: ApiClient, session_id: str, sequence: int, chunk: bytes, digest: bytes
) -> float:
    """PUT one chunk with its sha256 `digest`; return the seconds until its 201 (the ack)."""
    content_digest = f"sha-256=:{base64.b64encode(digest).decode()}:"
    headers = {"Content-Type": "application/octet-stream", "Content-Digest": content_digest}
    path = chunk_path(session_id, sequence)
    started = time.perf_counter()
    response = client.send("PUT", path, body=chunk, headers=headers)
    answer = response.read()
    acked = time.perf_counter()
    if response.status != 201:
        raise UnexpectedResponse("PUT", path, response.status, answer)
    return acked - started


def put_chunk_share(
    port: int,
    token: str,
    session_id: str,
    chunks: list[bytes],
    digests: list[bytes],
    sequences: range,
) -> list[float]:
    """PUT the chunks at `sequences` one after another on one connection; return their acks."""
    with ApiClient(port, token) as client:
        return [
            put_chunk(client, session_id, sequence, chunks[sequence], digests[sequence])
            for sequence in sequences
        ]


def warm_up(port: int, token: str, *, clients: int) -> None:
    """Small uploads first, so every server and worker process has loaded its code."""
    with ApiClient(port, token) as client:
        session_id = start_recording_session(client, "warm-up", WARM_UP_CHUNK_SIZE)
        pieces = [random.randbytes(WARM_UP_CHUNK_SIZE) for _ in range(WARM_UP_CHUNKS)]
        digests = [hashlib.sha256(piece).digest() for piece in pieces]
        upload_chunks(port, token, session_id, pieces, digests, clients=clients)
        wait_until_stored(client, session_id, WARM_UP_CHUNKS)


def upload_chunks(
    port: int,
    token: str,
    session_id: str,
    chunks: list[bytes],
    digests: list[bytes],
    *,
    clients: int,
) -> list[float]:
    """PUT every chunk from `clients` threads; return the ack latencies in seconds."""
    shares = [range(first, len(chunks), clients) for first in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        uploads = [
            pool.submit(put_chunk_share, port, token, session_id, chunks, digests, share)
            for share in shares
        ]
        return [latency for upload in uploads for latency in upload.result()]


def wait_until_stored(
    client: ApiClient,
    session_id: str,
    count: int,
    *,
    poll_seconds: float = PIPELINE_POLL_SECONDS,
) -> None:
    deadline = time.monotonic() + PIPELINE_TIMEOUT_SECONDS
    while True:
        pipeline = client.call("GET", f"{API}/sessions/{session_id}/pipeline")
        if pipeline["failed"] > 0:
            raise BenchmarkError(
                f"the pipeline failed {pipeline['failed']} chunk(s): {pipeline.get('last_error')}"
            )
        if pipeline["stored"] >= count:
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"{count} chunks not stored after {PIPELINE_TIMEOUT_SECONDS} s: {pipeline}"
            )
        time.sleep(poll_seconds)


@dataclass(frozen=True)
class Download:
    megabytes_per_second: float
    zstd_encoded_chunks: int


def receive_raw_bytes(
    response: http.client.HTTPResponse,
    buffer: memoryview,
    decompressor: zstandard.ZstdDecompressor,
) -> int:
    """Read the body into `buffer`, decompressing a zstd-encoded one; return the raw size."""
    encoding = response.getheader("Content-Encoding")
    if encoding is None:
        return read_into(response, buffer)
    if encoding != "zstd":
        raise BenchmarkError(f"a download came with Content-Encoding: {encoding}")
    with decompressor.stream_reader(response, read_size=READ_PIECE_SIZE, closefd=False) as reader:
        return read_into(reader, buffer)


def measure_download(
    client: ApiClient,
    session_id: str,
    digests: list[bytes],
    buffer: memoryview,
    *,
    accept_zstd: bool,
) -> Download:
    """Download every chunk into `buffer`; each one's sha256 is checked outside the clock.

    With `accept_zstd`, chunks stored with zstd come compressed and are decompressed on the clock.
    """
    headers = {"Accept-Encoding": "zstd"} if accept_zstd else {}
    decompressor = zstandard.ZstdDecompressor()
    size, elapsed, zstd_encoded_chunks = 0, 0.0, 0
    for sequence, digest in enumerate(digests):
        path = f"{chunk_path(session_id, sequence)}/download"
        started = time.perf_counter()
        response = client.send("GET", path, headers=headers)
        if response.status != 200:
            raise UnexpectedResponse("GET", path, response.status, response.read())
        try:
            received = receive_raw_bytes(response, buffer, decompressor)
        except zstandard.ZstdError as error:
            raise BenchmarkError(f"GET {path}: {error}") from error
        elapsed += time.perf_counter() - started
        encoding = response.getheader("Content-Encoding", "none")
        if response.read():
            raise BenchmarkError(f"GET {path}: bytes follow the end of the zstd frame")
        if hashlib.sha256(buffer[:received]).digest() != digest:
            raise BenchmarkError(
                f"GET {path}: {received} bytes (Content-Encoding: {encoding}, decoded)"
                " do not match the uploaded chunk's sha256"
            )
        size += received
        zstd_encoded_chunks += encoding == "zstd"
    return Download(megabytes_per_second(size, elapsed), zstd_encoded_chunks)
