"""A session deleted while recorders write into it: no 5xx, and none of its files stay behind."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from chunks_app.models import Chunk
from chunks_app.storage import get_spool
from chunks_app.storage.filesystem import FileSystemChunkStore
from core.db import atomic
from sessions_app.models import Session
from sessions_app.services import session_delete
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    files_of_session,
    post_stream,
    put_chunk,
    screen_like,
)

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 4
WRITES_EACH = 25
WRITES_BEFORE_DELETE = 6
ROUNDS = 4
# A real Celery worker may still be storing a chunk of the deleted session when the race ends.
SETTLE_SECONDS = 15
# On MongoDB a delete whose transaction lost every retry to the writers' conflicts answers 503
# `database_busy` with Retry-After, and the client asks again, as an operator would.
DELETE_ATTEMPTS = 10
LOCK_WAIT_SECONDS = 10


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    client.raise_request_exception = False
    return client


def _upload(client: APIClient, session: Session, writer: int, write: int) -> int:
    sequence = write * WRITERS + writer
    return put_chunk(client, session, sequence, screen_like(CHUNK_SIZE, seed=sequence)).status_code


def _append(client: APIClient, session: Session, writer: int, write: int) -> int:
    return post_stream(client, session, screen_like(CHUNK_SIZE // 2 + writer)).status_code


def _answers(write: Callable[[APIClient, Session, int, int], int], acknowledged: int) -> set[int]:
    """What a write racing the deletion may answer: done, or the session gone; with the spool
    in an object store, appends by several writers also 409 `stream_conflict` (as documented)."""
    if write is _append and not isinstance(get_spool(), FileSystemChunkStore):
        return {acknowledged, 404, 409}
    return {acknowledged, 404}


def _files_left(session: Session) -> list[str]:
    """The session's files once none is left, or when a pipeline still at work would be done."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (files := files_of_session(session.pk)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return files


def _race(
    user, session: Session, write: Callable[[APIClient, Session, int, int], int]
) -> tuple[int, list[int]]:
    """DELETE the session while WRITERS threads write into it; the statuses of both sides."""
    written = threading.Semaphore(0)

    def writer(number: int) -> list[int]:
        client = _client(user)
        statuses: list[int] = []
        try:
            for count in range(WRITES_EACH):
                statuses.append(write(client, session, number, count))
                written.release()
                if statuses[-1] == 404:
                    break
        finally:
            connections.close_all()
        return statuses

    def delete() -> int:
        client = _client(user)
        try:
            for _ in range(WRITES_BEFORE_DELETE):
                written.acquire(timeout=10)
            for _ in range(DELETE_ATTEMPTS):
                response = client.delete(f"/api/v1/sessions/{session.pk}")
                if response.status_code != 503 or response.json()["code"] != "database_busy":
                    break
                time.sleep(int(response["Retry-After"]))
            return response.status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=WRITERS + 1) as pool:
        writers = [pool.submit(writer, number) for number in range(WRITERS)]
        deleted = pool.submit(delete)
        statuses = [status for done in writers for status in done.result()]
    return deleted.result(), statuses


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize(
    ("write", "acknowledged"), [(_upload, 201), (_append, 200)], ids=["uploads", "stream-appends"]
)
def test_delete_racing_writes_is_never_a_5xx_and_leaves_no_file(
    user, recording, write, acknowledged, round_
):
    deleted, statuses = _race(user, recording, write)

    assert deleted == 204
    assert set(statuses) <= _answers(write, acknowledged), statuses
    assert not Session.objects.filter(pk=recording.pk).exists()
    assert _files_left(recording) == []


def _waiting_for_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _until_waiting_for_locks(count: int) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while _waiting_for_locks() < count:
        assert time.monotonic() < deadline, f"not {count} transactions waiting for a lock"
        time.sleep(0.01)


def _deadlock_timeout() -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setting::float / 1000 FROM pg_settings WHERE name = %s", ["deadlock_timeout"]
        )
        return cursor.fetchone()[0]


class InThread(threading.Thread):
    """`work` in a thread of its own, with its own connection; `error` is what it raised."""

    def __init__(self, work: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:
            self.error = error
        finally:
            connections.close_all()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_delete_neither_deadlocks_with_the_pipeline_on_a_chunk_added_while_it_waited(recording):
    """An upload holds the session row; the deletion waits for it; the upload's chunk is then
    claimed by the pipeline, which locks the chunk row and waits for the session row."""
    session_row_held, upload_done = threading.Event(), threading.Event()
    sessions = Session.objects.filter(pk=recording.pk)

    def upload() -> None:
        with atomic():
            sessions.update(updated_at=timezone.now())
            session_row_held.set()
            upload_done.wait(LOCK_WAIT_SECONDS)

    def claim(chunk: Chunk) -> Callable[[], None]:
        def work() -> None:
            with atomic():
                Chunk.objects.filter(pk=chunk.pk).update(status="processing")
                sessions.update(updated_at=timezone.now())

        return work

    uploading = InThread(upload)
    uploading.start()
    assert session_row_held.wait(LOCK_WAIT_SECONDS)
    deleting = InThread(lambda: session_delete(session=recording))
    deleting.start()
    _until_waiting_for_locks(1)
    chunk = Chunk.objects.create(
        session=recording, sequence=0, size=1, sha256="0" * 64, spool_key=f"{recording.pk}/0"
    )
    claiming = InThread(claim(chunk))
    claiming.start()
    _until_waiting_for_locks(2)

    upload_done.set()
    released = time.monotonic()
    for thread in (uploading, deleting, claiming):
        thread.join(LOCK_WAIT_SECONDS)

    assert (uploading.error, deleting.error, claiming.error) == (None, None, None)
    assert time.monotonic() - released < _deadlock_timeout()
    assert not Session.objects.filter(pk=recording.pk).exists()
    assert not Chunk.objects.filter(pk=chunk.pk).exists()
