"""The pipeline watchdog: it queues again the chunks no task will take, and only those."""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery.exceptions import AlwaysEagerIgnored
from django.utils import timezone

from chunks_app.models import Chunk
from lucid.celery import app as celery_app
from pipeline_app.models import Pipeline
from pipeline_app.selectors import chunk_tasks_in_queue
from pipeline_app.tasks import chunk_process_task, pipeline_watchdog_task
from sessions_app import tallies
from sessions_app.tallies import tally_apply
from tests.chunks_app.helpers import KIB, put_chunk, random_bytes, wait_until_settled
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

AN_HOUR_AGO = timedelta(hours=1)
QUEUE = celery_app.conf.task_default_queue


@pytest.fixture
def waiting(api_client, user):
    """A session whose three chunks were received while no task was queued for them."""
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")
    for sequence in range(3):
        put_chunk(api_client, session, sequence, random_bytes(500))
    Pipeline.objects.filter(session=session).update(state="running")
    return session


@contextmanager
def chunk_tasks_held(worker) -> Iterator[None]:
    """Nothing takes chunk tasks from the broker's queue meanwhile, as under a long backlog.

    The in-memory broker of the embedded default has no consumer; a real worker stops consuming.
    """
    if worker is None:
        yield
        return
    control = {"destination": [worker.hostname], "reply": True}
    celery_app.control.cancel_consumer(QUEUE, **control)
    try:
        yield
    finally:
        celery_app.control.add_consumer(QUEUE, **control)


def _publish_chunk_tasks(chunks: list[Chunk]) -> None:
    """Put the chunks' tasks in the broker's queue, as the pipeline did an hour ago."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlwaysEagerIgnored)
        for chunk in chunks:
            celery_app.send_task(chunk_process_task.name, args=[str(chunk.id)])


def _lose_queued_messages() -> None:
    """Empty the broker's queue of chunk tasks, as a broker restarted without persistence does."""
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)


def test_a_chunk_never_queued_is_processed_at_the_next_run(waiting):
    assert pipeline_watchdog_task.apply().result == 3

    chunks = wait_until_settled(waiting)
    assert [chunk.status for chunk in chunks] == ["stored"] * 3


def test_a_chunk_whose_message_was_lost_is_processed_again(waiting):
    old = timezone.now() - AN_HOUR_AGO
    Chunk.objects.update(created_at=old, queued_at=old)

    assert pipeline_watchdog_task.apply().result == 3

    chunks = wait_until_settled(waiting)
    assert [chunk.status for chunk in chunks] == ["stored"] * 3


def test_a_chunk_whose_worker_died_mid_task_is_processed_again(waiting):
    old = timezone.now() - AN_HOUR_AGO
    Chunk.objects.update(
        status="processing", created_at=old, queued_at=old, claimed_at=old + timedelta(seconds=1)
    )
    for _ in range(3):
        tally_apply(session_id=waiting.id, tally=tallies.chunk_claimed())

    assert pipeline_watchdog_task.apply().result == 3

    chunks = wait_until_settled(waiting)
    assert [chunk.status for chunk in chunks] == ["stored"] * 3
    waiting.refresh_from_db()
    assert (waiting.chunks_stored, waiting.chunks_processing, waiting.chunks_received) == (3, 0, 0)


def test_chunks_resume_queued_after_a_long_pause_are_not_queued_twice(
    api_client, waiting, celery_worker
):
    Pipeline.objects.update(state="paused")
    Chunk.objects.update(created_at=timezone.now() - AN_HOUR_AGO)
    with chunk_tasks_held(celery_worker):
        api_client.post(f"/api/v1/sessions/{waiting.id}/pipeline/resume")

        runs = [pipeline_watchdog_task.apply().result for _ in range(2)]

    assert runs == [0, 0]
    assert [chunk.status for chunk in wait_until_settled(waiting)] == ["stored"] * 3


def test_a_chunk_whose_task_was_queued_recently_is_left_alone_however_old(waiting):
    Chunk.objects.update(created_at=timezone.now() - AN_HOUR_AGO, queued_at=timezone.now())

    runs = [pipeline_watchdog_task.apply().result for _ in range(2)]

    assert runs == [0, 0]
    Chunk.objects.update(queued_at=timezone.now() - AN_HOUR_AGO)
    assert pipeline_watchdog_task.apply().result == 3
    assert [chunk.status for chunk in wait_until_settled(waiting)] == ["stored"] * 3


def test_a_backlog_still_in_the_queue_is_not_queued_again_until_its_messages_are_lost(
    waiting, celery_worker
):
    chunks = list(Chunk.objects.order_by("sequence"))
    old = timezone.now() - AN_HOUR_AGO
    with chunk_tasks_held(celery_worker):
        _publish_chunk_tasks(chunks)
        Chunk.objects.update(created_at=old, queued_at=old)

        runs = [pipeline_watchdog_task.apply().result for _ in range(2)]

        assert runs == [0, 0]
        assert chunk_tasks_in_queue() == len(chunks)
        _lose_queued_messages()
        assert pipeline_watchdog_task.apply().result == len(chunks)
    settled = wait_until_settled(waiting)
    assert [chunk.status for chunk in settled] == ["stored"] * 3


def test_a_chunk_put_back_after_a_transient_failure_waits_out_the_stale_time(waiting):
    Chunk.objects.update(claimed_at=timezone.now())

    assert pipeline_watchdog_task.apply().result == 0

    Chunk.objects.update(claimed_at=timezone.now() - AN_HOUR_AGO)
    assert pipeline_watchdog_task.apply().result == 3
    assert [chunk.status for chunk in wait_until_settled(waiting)] == ["stored"] * 3


def test_paused_pipelines_are_left_alone(waiting):
    Pipeline.objects.update(state="paused")
    Chunk.objects.update(created_at=timezone.now() - AN_HOUR_AGO)

    assert pipeline_watchdog_task.apply().result == 0
    assert set(Chunk.objects.values_list("status", flat=True)) == {"received"}


def test_processing_records_when_the_chunk_was_claimed_and_queued(api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    before = timezone.now()

    put_chunk(api_client, session, 0, random_bytes(100))

    (chunk,) = wait_until_settled(session)
    assert before <= chunk.queued_at <= chunk.claimed_at
