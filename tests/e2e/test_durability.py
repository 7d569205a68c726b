"""A server killed with SIGKILL right after a 2xx loses no acknowledged chunk.

Black-box tests of the real service: gunicorn in its own process group on a fresh storage
directory, spoken to over HTTP only, killed with SIGKILL and started again on the same files.
"""

import hashlib
import math
import random

import pytest

from tests.support.client import (
    API,
    ServiceClient,
    append,
    login,
    put_chunk,
    session_start,
    wait_until_stored,
)

CHUNK_SIZE = 256 * 1024
PROCESSING_SECONDS = 20
UPLOAD_SIZES = [CHUNK_SIZE, 1, CHUNK_SIZE - 1, 65_537, CHUNK_SIZE, 3, 200_001, 12_345]
UPLOAD_ORDER = [3, 0, 7, 1, 6, 2, 5, 4]
STREAM_SIZES = [1, 100_003, CHUNK_SIZE - 100_004, CHUNK_SIZE + 1, 77_777, 5, 3 * CHUNK_SIZE + 9]


def _recording_session(client: ServiceClient, *, name: str, paused: bool) -> str:
    session_id = session_start(client, name=name, chunk_size=CHUNK_SIZE)
    if paused:
        client.call("POST", f"{API}/sessions/{session_id}/pipeline/pause")
    return session_id


def _assert_chunk_intact(client: ServiceClient, session_id: str, sequence: int, data: bytes):
    path = f"{API}/sessions/{session_id}/chunks/{sequence}"
    chunk = client.call("GET", path)
    assert (chunk["size"], chunk["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    downloaded = client.fetch(f"{path}/download")
    assert downloaded == data, f"chunk {sequence}: the download differs from the upload"


def _chunk_statuses(client: ServiceClient, session_id: str) -> dict[int, str]:
    page = client.call("GET", f"{API}/sessions/{session_id}/chunks?page_size=1000")
    return {chunk["sequence"]: chunk["status"] for chunk in page["results"]}


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _piece(recording: bytes, sequence: int) -> bytes:
    """The bytes of the stream's chunk `sequence`."""
    return recording[sequence * CHUNK_SIZE : (sequence + 1) * CHUNK_SIZE]


@pytest.mark.parametrize("paused", [True, False], ids=["pipeline-paused", "pipeline-running"])
def test_uploaded_chunks_acknowledged_before_sigkill_survive_a_restart(server, paused):
    client = login(server.client())
    session_id = _recording_session(client, name="uploads", paused=paused)
    chunks = {seq: _random_bytes(size, seed=seq) for seq, size in enumerate(UPLOAD_SIZES)}
    for sequence in UPLOAD_ORDER:
        put_chunk(client, session_id, sequence, chunks[sequence])
    server.kill()

    server.start()
    client = login(server.client())
    expected_status = "received" if paused else "stored"
    assert _chunk_statuses(client, session_id) == dict.fromkeys(chunks, expected_status)
    for sequence, data in chunks.items():
        _assert_chunk_intact(client, session_id, sequence, data)
    if paused:
        client.call("POST", f"{API}/sessions/{session_id}/pipeline/resume")
    wait_until_stored(client, session_id, len(chunks), seconds=PROCESSING_SECONDS)
    for sequence, data in chunks.items():
        _assert_chunk_intact(client, session_id, sequence, data)


@pytest.mark.parametrize("paused", [True, False], ids=["pipeline-paused", "pipeline-running"])
def test_streamed_bytes_acknowledged_before_sigkill_survive_a_restart(server, paused):
    client = login(server.client())
    session_id = _recording_session(client, name="stream", paused=paused)
    appends = [_random_bytes(size, seed=100 + index) for index, size in enumerate(STREAM_SIZES)]
    acknowledged = 0
    for data in appends:
        result = append(client, session_id, data)
        acknowledged += len(data)
        assert (result["received"], result["offset"]) == (len(data), acknowledged)
    server.kill()

    server.start()
    client = login(server.client())
    recording = b"".join(appends)
    assert append(client, session_id, b"")["offset"] == len(recording)
    full_chunks = len(recording) // CHUNK_SIZE
    expected_status = "received" if paused else "stored"
    statuses = _chunk_statuses(client, session_id)
    assert statuses == dict.fromkeys(range(full_chunks), expected_status)
    for sequence in range(full_chunks):
        _assert_chunk_intact(client, session_id, sequence, _piece(recording, sequence))

    client.call("POST", f"{API}/sessions/{session_id}/stop")
    assert client.fetch(f"{API}/sessions/{session_id}/recording") == recording
    if paused:
        client.call("POST", f"{API}/sessions/{session_id}/pipeline/resume")
    chunk_count = math.ceil(len(recording) / CHUNK_SIZE)
    wait_until_stored(client, session_id, chunk_count, seconds=PROCESSING_SECONDS)
    for sequence in range(chunk_count):
        _assert_chunk_intact(client, session_id, sequence, _piece(recording, sequence))
    assert client.fetch(f"{API}/sessions/{session_id}/recording") == recording
