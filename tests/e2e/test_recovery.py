"""The embedded default gets every waiting chunk stored by itself: at start, and periodically.

Black-box tests of the service `make run` runs (tests/support/server.py): chunks a SIGKILL left
`processing` or `received` are stored soon after the next start, long before the watchdog's stale
time; chunks that met a full chunk store wait as `received` (never `failed`) while /health says
the chunk store is full, and are stored once space is freed, without an operator. One worker
runs the periodic tasks; when it dies, another takes them over.
"""

import errno
import http.client
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from lucid.embedded import LOCK_NAME
from tests.support.client import (
    API,
    ServiceClient,
    append,
    login,
    put_chunk,
    session_start,
    wait_until_stored,
)
from tests.support.disks import small_filesystem
from tests.support.ports import HOST
from tests.support.server import LucidServer, served

CHUNK_SIZE = 4 * 1024 * 1024
# Each chunk of random bytes takes zstd's slowest level about half a second: long enough for
# the SIGKILL to land while the pipeline works on the first of them.
SLOW_LEVEL = 19
STREAMED_CHUNKS = 6
# Well below the watchdog's defaults (every 60 s, for chunks waiting 300 s): only the recovery
# at start can store them in time.
RECOVERY_SECONDS = 30
STORE_SIZE = "8m"
SMALL_CHUNK = 256 * 1024
SCHEDULER_STARTED = "embedded scheduler: this worker runs the periodic tasks"


def _chunks(client: ServiceClient, session_id: str) -> dict[int, dict]:
    """The session's chunks by sequence."""
    page = client.call("GET", f"{API}/sessions/{session_id}/chunks?page_size=1000")
    return {chunk["sequence"]: chunk for chunk in page["results"]}


def _waiting_chunks(database: Path) -> int:
    """How many chunks the service's database holds `received` or `processing`."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as connection:
        query = "SELECT count(*) FROM chunks_app_chunk WHERE status IN ('received', 'processing')"
        return connection.execute(query).fetchone()[0]


def _wait_until_processing(database: Path, *, seconds: float = 30) -> None:
    """Until the service's database shows a chunk `processing`."""
    deadline = time.monotonic() + seconds
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as connection:
        query = "SELECT count(*) FROM chunks_app_chunk WHERE status = 'processing'"
        while not connection.execute(query).fetchone()[0]:
            assert time.monotonic() < deadline, "no chunk ever reached `processing`"
            time.sleep(0.005)


def test_chunks_a_sigkill_left_waiting_are_stored_soon_after_the_next_start(server):
    client = login(server.client())
    session_id = session_start(
        client, name="killed mid-pipeline", chunk_size=CHUNK_SIZE, compression_level=SLOW_LEVEL
    )
    recording = os.urandom(STREAMED_CHUNKS * CHUNK_SIZE)
    uploading = threading.Thread(target=_append_until_killed, args=(client, session_id, recording))
    uploading.start()
    database = Path(server.env["LUCID_STORAGE_PATH"]) / "lucid.sqlite3"
    _wait_until_processing(database)
    server.kill()
    uploading.join(timeout=10)
    left_waiting = _waiting_chunks(database)

    server.start()
    client = login(server.client())
    wait_until_stored(client, session_id, STREAMED_CHUNKS, seconds=RECOVERY_SECONDS)
    for sequence in range(STREAMED_CHUNKS):
        piece = recording[sequence * CHUNK_SIZE : (sequence + 1) * CHUNK_SIZE]
        assert client.fetch(f"{API}/sessions/{session_id}/chunks/{sequence}/download") == piece
    assert left_waiting > 0
    assert f"embedded scheduler: {left_waiting} chunks left waiting were queued" in server.log()


def _append_until_killed(client: ServiceClient, session_id: str, recording: bytes) -> None:
    """Append the whole recording at once; the service dies before it answers."""
    try:
        append(client, session_id, recording)
    except OSError:
        return
    raise AssertionError("the append was answered: the service was not killed mid-pipeline")


@pytest.fixture
def small_store(tmp_path) -> Iterator[Path]:
    """A chunk store on a tmpfs of STORE_SIZE of this test's own, unmounted afterwards."""
    with small_filesystem(tmp_path / "small-store", size=STORE_SIZE) as store:
        yield store


@pytest.fixture
def server_on_small_store(tmp_path, small_store) -> Iterator[LucidServer]:
    """The service with its chunk store on `small_store`, the watchdog every second."""
    with served(
        tmp_path,
        LUCID_CHUNK_STORE_PATH=str(small_store),
        LUCID_HEALTH_MIN_FREE_MB="1",
        LUCID_WATCHDOG_INTERVAL_SECONDS="1",
        LUCID_WATCHDOG_STALE_SECONDS="1",
    ) as lucid:
        yield lucid


def _fill(directory: Path) -> Path:
    """A file taking every byte left on the filesystem holding `directory`."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with filler.open("wb") as file:
        try:
            while True:
                file.write(block)
                file.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler


def test_chunks_that_met_a_full_chunk_store_are_stored_once_space_is_freed(
    server_on_small_store, small_store
):
    server = server_on_small_store
    client = login(server.client())
    session_id = session_start(client, name="full store", chunk_size=SMALL_CHUNK)
    filler = _fill(small_store)
    chunks = {sequence: os.urandom(SMALL_CHUNK) for sequence in range(4)}

    for sequence, data in chunks.items():
        put_chunk(client, session_id, sequence, data)

    waiting = _chunks(client, session_id)
    assert {chunk["status"] for chunk in waiting.values()} == {"received"}
    assert all("No space left on device" in chunk["error"] for chunk in waiting.values())
    status, body = _health(server)
    assert status == 503
    assert body["checks"]["storage"].startswith("chunk store full: ")
    filler.unlink()
    wait_until_stored(client, session_id, len(chunks), seconds=RECOVERY_SECONDS)
    for sequence, data in chunks.items():
        assert client.fetch(f"{API}/sessions/{session_id}/chunks/{sequence}/download") == data
    assert _health(server)[0] == 200
    assert server.log().count(SCHEDULER_STARTED) == 1


def _health(server: LucidServer) -> tuple[int, dict]:
    """GET /health's status and body, 503 included."""
    connection = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _scheduler_pid(lock: Path) -> int | None:
    """The process holding the embedded scheduler's lock file, from /proc/locks."""
    inode = lock.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "FLOCK" and int(fields[5].rsplit(":", 1)[1]) == inode:
            return int(fields[4])
    return None


def test_when_the_worker_running_the_periodic_tasks_dies_another_takes_them_over(server):
    lock = Path(server.env["LUCID_STORAGE_PATH"]) / LOCK_NAME
    holder = _wait_for_scheduler(lock, other_than=None)

    os.kill(holder, signal.SIGKILL)

    successor = _wait_for_scheduler(lock, other_than=holder)
    assert successor in server.group.members()
    assert server.log().count(SCHEDULER_STARTED) == 2


def _wait_for_scheduler(lock: Path, *, other_than: int | None, seconds: float = 20) -> int:
    """The pid of the worker running the periodic tasks, once that is not `other_than`."""
    deadline = time.monotonic() + seconds
    while True:
        pid = _scheduler_pid(lock) if lock.exists() else None
        if pid not in (None, other_than):
            return pid
        assert time.monotonic() < deadline, f"no worker but {other_than} runs the periodic tasks"
        time.sleep(0.05)
