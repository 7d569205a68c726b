"""`make run`'s server on MongoDB (MONGO_URL) serves the whole API, from login to delete.

Runs only with MONGO_URL (the third run of .ci/run). The server gets a database of its own on
that server (`lucid_serve_<pid>`, dropped before and after as the topology test drops its own)
and no broker, so its tasks run in-process; it is spoken to over HTTP only.
"""

import os
import random

import pytest

from tests.e2e.topology_databases import drop_mongodb_database, with_path
from tests.support.client import (
    API,
    ServiceClient,
    append,
    login,
    put_chunk,
    session_start,
    wait_until_stored,
)
from tests.support.ports import health_status
from tests.support.server import served

pytestmark = pytest.mark.skipif(
    not os.environ.get("MONGO_URL"), reason="needs MONGO_URL (the third run of .ci/run)"
)

DATABASE_NAME = f"lucid_serve_{os.getpid()}"
CHUNK_SIZE = 256 * 1024
RECORDING_SIZE = 3 * CHUNK_SIZE + 12_345
CHUNK_COUNT = 4
PUT_ORDER = (2, 0, 3, 1)
STREAM_PIECES = (1, 100_003, CHUNK_SIZE + 1, 77_777)
# Across the border of chunks 1 and 2.
RANGE_START, RANGE_END = CHUNK_SIZE + 1_000, 2 * CHUNK_SIZE + 999
PROCESSING_SECONDS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One service for the module on a MongoDB database of its own."""
    import pymongo

    server_url = os.environ["MONGO_URL"]
    mongodb = pymongo.MongoClient(server_url)
    drop_mongodb_database(mongodb, DATABASE_NAME)
    try:
        with served(
            tmp_path_factory.mktemp("serve-mongodb"),
            MONGO_URL=with_path(server_url, f"/{DATABASE_NAME}"),
        ) as lucid:
            yield lucid
    finally:
        drop_mongodb_database(mongodb, DATABASE_NAME)
        mongodb.close()


@pytest.fixture(scope="module")
def recorder(server) -> ServiceClient:
    """One login for the module: the login throttle allows ten a minute across workers."""
    return login(server.client())


def _recording(seed: int) -> bytes:
    return random.Random(seed).randbytes(RECORDING_SIZE)


def _chunk(recording: bytes, sequence: int) -> bytes:
    return recording[sequence * CHUNK_SIZE : (sequence + 1) * CHUNK_SIZE]


def _put_session(recorder: ServiceClient, recording: bytes) -> str:
    """A session whose chunks were PUT out of order, stopped."""
    session_id = session_start(recorder, name="put on mongodb", chunk_size=CHUNK_SIZE)
    for sequence in PUT_ORDER:
        put_chunk(recorder, session_id, sequence, _chunk(recording, sequence))
    recorder.call("POST", f"{API}/sessions/{session_id}/stop")
    return session_id


def _stream_session(recorder: ServiceClient, recording: bytes) -> str:
    """A session whose bytes were appended to its stream in uneven pieces, stopped."""
    session_id = session_start(recorder, name="stream on mongodb", chunk_size=CHUNK_SIZE)
    offset = 0
    for size in (*STREAM_PIECES, RECORDING_SIZE - sum(STREAM_PIECES)):
        result = append(recorder, session_id, recording[offset : offset + size])
        offset += size
        assert (result["received"], result["offset"]) == (size, offset)
    recorder.call("POST", f"{API}/sessions/{session_id}/stop")
    return session_id


def _assert_downloads(recorder: ServiceClient, session_id: str, recording: bytes) -> None:
    """The whole recording, and a range across a chunk border, give back the bytes sent."""
    path = f"{API}/sessions/{session_id}/recording"
    assert recorder.fetch(path) == recording
    status, content = recorder.request(
        "GET", path, headers={"Range": f"bytes={RANGE_START}-{RANGE_END}"}
    )
    assert status == 206
    assert content == recording[RANGE_START : RANGE_END + 1]


def test_health_answers_200(server):
    assert health_status(server.port) == 200


def test_chunks_put_out_of_order_are_stored_and_download_whole_and_by_range(recorder):
    recording = _recording(seed=1)
    session_id = _put_session(recorder, recording)

    wait_until_stored(recorder, session_id, CHUNK_COUNT, seconds=PROCESSING_SECONDS)

    _assert_downloads(recorder, session_id, recording)


def test_a_streamed_recording_is_stored_and_downloads_whole_and_by_range(recorder):
    recording = _recording(seed=2)
    session_id = _stream_session(recorder, recording)

    wait_until_stored(recorder, session_id, CHUNK_COUNT, seconds=PROCESSING_SECONDS)

    _assert_downloads(recorder, session_id, recording)


def test_a_stopped_session_is_listed_as_stopped(recorder):
    session_id = _put_session(recorder, _recording(seed=3))

    sessions = recorder.call("GET", f"{API}/sessions?page_size=1000")["results"]

    assert {session["id"]: session["status"] for session in sessions}[session_id] == "stopped"


def test_statistics_count_the_session_and_its_stored_chunks(recorder):
    session_id = _put_session(recorder, _recording(seed=4))
    wait_until_stored(recorder, session_id, CHUNK_COUNT, seconds=PROCESSING_SECONDS)

    statistics = recorder.call("GET", f"{API}/sessions/{session_id}/statistics")
    system = recorder.call("GET", f"{API}/sessions/statistics")

    assert (statistics["chunk_count"], statistics["size"]) == (CHUNK_COUNT, RECORDING_SIZE)
    assert statistics["chunks_by_status"]["stored"] == CHUNK_COUNT
    assert statistics["compressed_size"] > 0
    assert system["sessions_by_status"]["stopped"] >= 1
    assert system["chunks_by_status"]["stored"] >= CHUNK_COUNT
    assert system["size"] >= RECORDING_SIZE


def test_a_deleted_session_is_gone(recorder):
    session_id = _put_session(recorder, _recording(seed=5))
    wait_until_stored(recorder, session_id, CHUNK_COUNT, seconds=PROCESSING_SECONDS)

    status, _ = recorder.request("DELETE", f"{API}/sessions/{session_id}")

    assert status == 204
    assert recorder.request("GET", f"{API}/sessions/{session_id}")[0] == 404
    assert recorder.request("GET", f"{API}/sessions/{session_id}/recording")[0] == 404
    sessions = recorder.call("GET", f"{API}/sessions?page_size=1000")["results"]
    assert session_id not in {session["id"] for session in sessions}
