"""The pipeline: pause and resume, idempotent processing, failures, deletion of files."""

import time

import pytest
from django.utils import timezone

from chunks_app.models import Chunk
from chunks_app.storage import ChunkStoreError, get_chunk_store, get_spool
from core.encryption import generate_key_line
from pipeline_app import services
from pipeline_app.tasks import chunk_process_task, pipeline_watchdog_task
from sessions_app import tallies
from sessions_app.models import Session
from sessions_app.tallies import tally_apply
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    download,
    post_stream,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.support.faults import overwrite, remains

pytestmark = pytest.mark.django_db(transaction=True)


def _pipeline(client, session, action: str = ""):
    url = f"/api/v1/sessions/{session.id}/pipeline" + (f"/{action}" if action else "")
    return client.post(url) if action else client.get(url)


def _wait_until_put_back(session, *, attempts: int, timeout: float = 30) -> Chunk:
    """The session's only chunk once its retries are spent and it waits as `received` again."""
    deadline = time.monotonic() + timeout
    while (chunk := Chunk.objects.get(session=session)).attempts < attempts or not chunk.error:
        assert time.monotonic() < deadline, (chunk.status, chunk.attempts, chunk.error)
        time.sleep(0.05)
    assert (chunk.status, chunk.attempts) == ("received", attempts)
    return chunk


def _files() -> list[str]:
    """Whatever the spool and the chunk store hold, hidden files and unfinished uploads too."""
    return remains(get_spool()) + remains(get_chunk_store())


def test_new_session_pipeline_is_running_and_empty(api_client, recording):
    response = _pipeline(api_client, recording)

    assert response.status_code == 200
    assert response.json() == {
        "state": "running",
        "received": 0,
        "processing": 0,
        "stored": 0,
        "failed": 0,
        "damaged": 0,
        "backlog_bytes": 0,
        "last_error": "",
    }


def test_paused_pipeline_keeps_chunks_received_while_recording_goes_on(api_client, recording):
    assert _pipeline(api_client, recording, "pause").json()["state"] == "paused"

    for sequence in range(3):
        assert put_chunk(api_client, recording, sequence, screen_like(1000)).status_code == 201

    status = _pipeline(api_client, recording).json()
    assert (status["state"], status["received"], status["stored"]) == ("paused", 3, 0)
    assert status["backlog_bytes"] == 3000


def test_resume_processes_everything_that_waited(api_client, recording):
    _pipeline(api_client, recording, "pause")
    bodies = [screen_like(2000, seed=i) for i in range(3)]
    for sequence, body in enumerate(bodies):
        put_chunk(api_client, recording, sequence, body)

    response = _pipeline(api_client, recording, "resume")

    assert response.status_code == 200
    chunks = wait_until_settled(recording)
    assert [c.status for c in chunks] == ["stored"] * 3
    assert _pipeline(api_client, recording).json()["backlog_bytes"] == 0
    for sequence, body in enumerate(bodies):
        assert body_of(download(api_client, recording, sequence)) == body


@pytest.mark.parametrize(("action", "state"), [("pause", "paused"), ("resume", "running")])
def test_pipeline_action_in_its_own_state_is_409(api_client, recording, action, state):
    if state == "paused":
        _pipeline(api_client, recording, "pause")

    response = _pipeline(api_client, recording, action)

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["status"] == state


def test_pipeline_of_unknown_session_is_404(api_client):
    response = api_client.get("/api/v1/sessions/not-a-uuid/pipeline")

    assert response.status_code == 404


def test_processing_a_chunk_twice_stores_it_once(api_client, recording):
    body = screen_like(CHUNK_SIZE)
    put_chunk(api_client, recording, 0, body)
    (chunk,) = wait_until_settled(recording)
    recording.refresh_from_db()
    compressed_before = recording.compressed_size

    outcome = chunk_process_task.apply(args=[str(chunk.id)]).result

    assert outcome == "skipped"
    recording.refresh_from_db()
    assert recording.compressed_size == compressed_before == chunk.compressed_size
    assert body_of(download(api_client, recording, 0)) == body


def test_a_chunk_stuck_in_processing_is_finished_by_a_second_run(api_client, recording):
    _pipeline(api_client, recording, "pause")
    body = screen_like(5000)
    put_chunk(api_client, recording, 0, body)
    Chunk.objects.update(status="processing")  # as a worker that claimed it and died
    tally_apply(session_id=recording.id, tally=tallies.chunk_claimed())
    _pipeline(api_client, recording, "resume")

    outcome = chunk_process_task.apply(args=[str(Chunk.objects.get().id)]).result

    assert outcome == "stored"
    recording.refresh_from_db()
    assert recording.compressed_size == Chunk.objects.get().compressed_size
    assert body_of(download(api_client, recording, 0)) == body


def test_a_storage_failure_leaves_the_chunk_waiting_until_the_store_is_back(
    api_client, recording, settings, chunk_store_faults
):
    refused = ChunkStoreError("Could not write to the chunk store: not-a-directory.")
    for writing in ("put", "put_from"):
        chunk_store_faults.fail(writing, refused)
    body = screen_like(3000)

    put_chunk(api_client, recording, 0, body)

    chunk = _wait_until_put_back(recording, attempts=settings.LUCID_TASK_MAX_RETRIES + 1)
    assert "not-a-directory" in chunk.error
    status = _pipeline(api_client, recording).json()
    assert (status["received"], status["failed"], status["backlog_bytes"]) == (1, 0, 3000)
    assert status["last_error"].startswith("chunk 0:")
    detail = api_client.get(f"/api/v1/sessions/{recording.id}/chunks/0").json()
    assert detail["status"] == "received" and "not-a-directory" in detail["error"]
    assert body_of(download(api_client, recording, 0)) == body

    chunk_store_faults.clear()
    settings.LUCID_WATCHDOG_STALE_SECONDS = 0
    assert pipeline_watchdog_task.apply().result == 1

    (chunk,) = wait_until_settled(recording)
    assert (chunk.status, chunk.error) == ("stored", "")
    assert body_of(download(api_client, recording, 0)) == body
    recording.refresh_from_db()
    assert (recording.chunks_received, recording.chunks_stored, recording.backlog_bytes) == (
        0,
        1,
        0,
    )


def test_damaged_spool_marks_the_chunk_failed_at_once(api_client, recording):
    _pipeline(api_client, recording, "pause")
    put_chunk(api_client, recording, 0, screen_like(3000))
    chunk = Chunk.objects.get()
    overwrite(get_spool(), chunk.spool_key, b"cut short")

    _pipeline(api_client, recording, "resume")

    (chunk,) = wait_until_settled(recording)
    assert chunk.status == "failed"
    assert chunk.attempts == 1
    assert "9 bytes, not 3000" in chunk.error


def test_a_chunk_spooled_under_a_key_not_configured_waits_for_it(api_client, recording, settings):
    first, second = generate_key_line("first"), generate_key_line("second")
    settings.LUCID_ENCRYPTION_KEYS, settings.LUCID_ENCRYPTION_ACTIVE_KEY = first, "first"
    _pipeline(api_client, recording, "pause")
    body = screen_like(3000)
    put_chunk(api_client, recording, 0, body)
    settings.LUCID_ENCRYPTION_KEYS, settings.LUCID_ENCRYPTION_ACTIVE_KEY = second, "second"

    _pipeline(api_client, recording, "resume")

    chunk = _wait_until_put_back(recording, attempts=1)
    assert "key 'first'" in chunk.error
    assert first.partition(":")[2] not in chunk.error
    settings.LUCID_ENCRYPTION_KEYS = f"{first},{second}"
    services.pipeline_recover(before=timezone.now())
    (chunk,) = wait_until_settled(recording)
    assert (chunk.status, chunk.key_id) == ("stored", "second")
    assert body_of(download(api_client, recording, 0)) == body


def test_delete_removes_every_file_of_the_session(api_client, recording):
    post_stream(api_client, recording, random_bytes(CHUNK_SIZE * 2 + 10))
    put_other = SessionFactory(owner=recording.owner, status="recording", chunk_size=CHUNK_SIZE)
    put_chunk(api_client, put_other, 0, b"keep me")
    wait_until_settled(recording)
    wait_until_settled(put_other)

    response = api_client.delete(f"/api/v1/sessions/{recording.id}")

    assert response.status_code == 204
    remaining = _files()
    assert remaining and all(path.startswith(str(put_other.id)) for path in remaining)
    assert not Chunk.objects.filter(session_id=recording.id).exists()


def test_processing_after_the_session_was_deleted_leaves_no_orphan(api_client, recording):
    _pipeline(api_client, recording, "pause")
    put_chunk(api_client, recording, 0, screen_like(3000))
    chunk_id = str(Chunk.objects.get().id)
    api_client.delete(f"/api/v1/sessions/{recording.id}")

    outcome = chunk_process_task.apply(args=[chunk_id]).result

    assert outcome == "skipped"
    assert not Session.objects.filter(pk=recording.id).exists()
    assert _files() == []


def test_chunk_mark_failed_leaves_a_stored_chunk_alone(api_client, recording):
    put_chunk(api_client, recording, 0, screen_like(3000))
    (chunk,) = wait_until_settled(recording)

    services.chunk_mark_failed(chunk_id=chunk.id, error="late failure")

    chunk.refresh_from_db()
    assert chunk.status == "stored"
