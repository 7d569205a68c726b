"""The pipeline watchdog: chunks whose task was lost or whose worker died are queued again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chunks_app.models import Chunk
from pipeline_app.models import Pipeline
from pipeline_app.tasks import pipeline_watchdog_task
from sessions_app import tallies
from sessions_app.tallies import tally_apply
from tests.chunks_app.helpers import KIB, put_chunk, random_bytes, wait_until_settled
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lost_chunk(api_client, user):
    """A chunk received while no task was queued for it (as if the broker lost the message)."""
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")
    put_chunk(api_client, session, 0, random_bytes(500))
    Pipeline.objects.filter(session=session).update(state="running")
    return session


def test_a_chunk_received_long_ago_is_processed_again(lost_chunk, settings):
    Chunk.objects.update(created_at=timezone.now() - timedelta(hours=1))

    queued = pipeline_watchdog_task.apply().result

    assert queued == 1
    (chunk,) = wait_until_settled(lost_chunk)
    assert chunk.status == "stored"


def test_a_chunk_whose_worker_died_mid_task_is_processed_again(lost_chunk):
    old = timezone.now() - timedelta(hours=1)
    Chunk.objects.update(status="processing", claimed_at=old, created_at=old)
    tally_apply(session_id=lost_chunk.id, tally=tallies.chunk_claimed())

    assert pipeline_watchdog_task.apply().result == 1

    (chunk,) = wait_until_settled(lost_chunk)
    assert chunk.status == "stored"
    lost_chunk.refresh_from_db()
    assert (lost_chunk.chunks_stored, lost_chunk.chunks_processing) == (1, 0)


def test_recent_chunks_and_paused_pipelines_are_left_alone(lost_chunk):
    assert pipeline_watchdog_task.apply().result == 0
    Chunk.objects.update(created_at=timezone.now() - timedelta(hours=1))
    Pipeline.objects.update(state="paused")

    assert pipeline_watchdog_task.apply().result == 0
    assert Chunk.objects.get().status == "received"


def test_processing_records_when_the_chunk_was_claimed(api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    before = timezone.now()

    put_chunk(api_client, session, 0, random_bytes(100))

    (chunk,) = wait_until_settled(session)
    assert chunk.claimed_at is not None and chunk.claimed_at >= before
