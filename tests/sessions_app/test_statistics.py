"""Statistics: the running totals equal a recount of the rows after any mix of events."""

import pytest
from django.db.models import Count, Q, Sum

from chunks_app.models import Chunk
from chunks_app.storage import get_chunk_store, get_spool
from core.counters import counters_read
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    KIB,
    post_stream,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.support.faults import overwrite

pytestmark = pytest.mark.django_db(transaction=True)
CHUNK_SIZE = 64 * KIB
CHUNK_STATUSES = ["received", "processing", "stored", "failed", "damaged"]
SESSION_STATUSES = ["created", "recording", "paused", "stopped", "failed"]


def recount_session(session: Session) -> dict:
    chunks = Chunk.objects.filter(session=session)
    sums = chunks.aggregate(
        size=Sum("size", default=0), compressed=Sum("compressed_size", default=0)
    )
    return {
        "chunk_count": chunks.count(),
        "size": sums["size"],
        "compressed_size": sums["compressed"],
        "chunks_by_status": {s: chunks.filter(status=s).count() for s in CHUNK_STATUSES},
    }


def recount_system() -> dict:
    chunks = Chunk.objects.all()
    sums = chunks.aggregate(
        size=Sum("size", default=0), compressed=Sum("compressed_size", default=0)
    )
    by_status = Session.objects.aggregate(
        **{s: Count("pk", filter=Q(status=s)) for s in SESSION_STATUSES}
    )
    return {
        "session_count": Session.objects.count(),
        "sessions_by_status": by_status,
        "chunk_count": chunks.count(),
        "chunks_by_status": {s: chunks.filter(status=s).count() for s in CHUNK_STATUSES},
        "size": sums["size"],
        "compressed_size": sums["compressed"],
        "backlog_bytes": chunks.filter(status__in=["received", "processing"]).aggregate(
            b=Sum("size", default=0)
        )["b"],
    }


def _system(client) -> dict:
    response = client.get("/api/v1/sessions/statistics")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def mixed_history(api_client, user):
    """Uploads, a stream, a paused pipeline, a failure, a deleted session, state changes."""
    uploaded = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    for sequence in range(3):
        put_chunk(api_client, uploaded, sequence, screen_like(20_000 + sequence, seed=sequence))
    streamed = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    post_stream(api_client, streamed, random_bytes(CHUNK_SIZE * 2 + 999))
    api_client.post(f"/api/v1/sessions/{streamed.id}/stop")
    paused = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    api_client.post(f"/api/v1/sessions/{paused.id}/pipeline/pause")
    put_chunk(api_client, paused, 0, screen_like(5000))
    doomed = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    put_chunk(api_client, doomed, 0, screen_like(7000))
    wait_until_settled(doomed)
    api_client.delete(f"/api/v1/sessions/{doomed.id}")
    failing = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    api_client.post(f"/api/v1/sessions/{failing.id}/pipeline/pause")
    put_chunk(api_client, failing, 0, screen_like(3000))
    overwrite(get_spool(), Chunk.objects.get(session=failing).spool_key, b"cut short")
    api_client.post(f"/api/v1/sessions/{failing.id}/pipeline/resume")
    wait_until_settled(failing)
    api_client.post(f"/api/v1/sessions/{failing.id}/pause")
    SessionFactory(owner=user)
    for session in (uploaded, streamed):
        wait_until_settled(session)
    return {"uploaded": uploaded, "streamed": streamed, "paused": paused, "failing": failing}


def test_session_statistics_equal_a_recount(api_client, mixed_history):
    for session in mixed_history.values():
        statistics = api_client.get(f"/api/v1/sessions/{session.id}/statistics").json()

        expected = recount_session(session)
        assert {key: statistics[key] for key in expected} == expected
        ratio = expected["compressed_size"] / expected["size"] if expected["size"] else None
        assert statistics["compression_ratio"] == pytest.approx(ratio)


def test_system_statistics_equal_a_recount(api_client, mixed_history):
    statistics = _system(api_client)

    expected = recount_system()
    assert {key: statistics[key] for key in expected} == expected
    assert statistics["chunks_by_status"]["failed"] == 1
    assert statistics["chunks_by_status"]["received"] == 1


def test_system_statistics_follow_each_change_at_once(api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    before = _system(api_client)

    put_chunk(api_client, session, 0, random_bytes(1234))
    wait_until_settled(session)
    after = _system(api_client)

    assert after["size"] == before["size"] + 1234
    assert after["chunk_count"] == before["chunk_count"] + 1
    assert after == {**after, **recount_system()}


def test_running_totals_in_the_database_equal_a_recount(mixed_history):
    counters = counters_read()
    expected = recount_system()

    for status, count in expected["chunks_by_status"].items():
        assert counters.get(f"chunks.{status}", 0) == count
    for status, count in expected["sessions_by_status"].items():
        assert counters.get(f"sessions.{status}", 0) == count
    assert counters["chunks.raw_bytes"] == expected["size"]
    assert counters["chunks.stored_bytes"] == expected["compressed_size"]
    assert counters["chunks.backlog_bytes"] == expected["backlog_bytes"]


def test_session_statistics_report_duration_and_processing_time(api_client, user):
    session = SessionFactory(owner=user, chunk_size=CHUNK_SIZE)
    api_client.post(f"/api/v1/sessions/{session.id}/start")
    put_chunk(api_client, session, 0, screen_like(9000))
    wait_until_settled(session)
    api_client.post(f"/api/v1/sessions/{session.id}/stop")

    statistics = api_client.get(f"/api/v1/sessions/{session.id}/statistics").json()

    session.refresh_from_db()
    assert statistics["duration_seconds"] == pytest.approx(
        (session.stopped_at - session.started_at).total_seconds()
    )
    chunk = Chunk.objects.get(session=session)
    assert statistics["average_processing_ms"] == pytest.approx(chunk.processing_ms, abs=0.01)


def test_new_session_statistics_are_empty(api_client, user):
    session = SessionFactory(owner=user)

    statistics = api_client.get(f"/api/v1/sessions/{session.id}/statistics").json()

    assert statistics == {
        "chunk_count": 0,
        "size": 0,
        "compressed_size": 0,
        "compression_ratio": None,
        "chunks_by_status": {s: 0 for s in CHUNK_STATUSES},
        "duration_seconds": None,
        "average_processing_ms": None,
    }


def test_statistics_of_unknown_session_is_404(api_client):
    assert api_client.get("/api/v1/sessions/nope/statistics").status_code == 404


def test_system_statistics_report_the_chunk_store(api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    put_chunk(api_client, session, 0, random_bytes(4000))
    wait_until_settled(session)

    storage = _system(api_client)["storage"]

    assert storage["path"] == get_chunk_store().location
    assert storage["used_bytes"] == 4000
    assert storage["free_bytes"] > 0


def test_statistics_need_credentials(anonymous_client, user):
    session = SessionFactory(owner=user)

    assert anonymous_client.get("/api/v1/sessions/statistics").status_code == 401
    assert anonymous_client.get(f"/api/v1/sessions/{session.id}/statistics").status_code == 401
