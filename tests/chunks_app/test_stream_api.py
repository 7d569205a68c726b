"""Streaming bytes into a session: exact cutting, the tail at stop, recovery of unacked bytes."""

import hashlib

import pytest

from chunks_app.models import Chunk
from chunks_app.spool import session_stream
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    download,
    post_stream,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_append_reports_bytes_offset_and_completed_chunks(api_client, recording):
    first = post_stream(api_client, recording, random_bytes(CHUNK_SIZE - 10))
    second = post_stream(api_client, recording, random_bytes(CHUNK_SIZE * 2 + 20))

    assert first.status_code == 200
    assert first.json() == {"received": CHUNK_SIZE - 10, "offset": CHUNK_SIZE - 10, "chunks": []}
    assert second.json() == {
        "received": CHUNK_SIZE * 2 + 20,
        "offset": CHUNK_SIZE * 3 + 10,
        "chunks": [0, 1, 2],
    }


def test_stream_is_cut_into_exact_chunk_size_pieces(api_client, recording):
    data = screen_like(CHUNK_SIZE * 3 + 5000)
    for start in range(0, len(data), 50_000):
        post_stream(api_client, recording, data[start : start + 50_000])

    chunks = wait_until_settled(recording)

    assert [(c.sequence, c.size) for c in chunks] == [(i, CHUNK_SIZE) for i in range(3)]
    for chunk in chunks:
        piece = data[chunk.sequence * CHUNK_SIZE : (chunk.sequence + 1) * CHUNK_SIZE]
        assert chunk.sha256 == hashlib.sha256(piece).hexdigest()
        assert body_of(download(api_client, recording, chunk.sequence)) == piece


def test_stop_flushes_the_tail_into_a_last_shorter_chunk(api_client, recording):
    data = random_bytes(CHUNK_SIZE + 777)
    post_stream(api_client, recording, data)

    response = api_client.post(f"/api/v1/sessions/{recording.id}/stop")

    assert response.status_code == 200
    assert response.json()["chunk_count"] == 2
    assert response.json()["size"] == len(data)
    chunks = wait_until_settled(recording)
    assert [(c.sequence, c.size) for c in chunks] == [(0, CHUNK_SIZE), (1, 777)]
    recording_bytes = body_of(api_client.get(f"/api/v1/sessions/{recording.id}/recording"))
    assert recording_bytes == data


def test_stop_after_an_exact_multiple_adds_no_empty_chunk(api_client, recording):
    post_stream(api_client, recording, random_bytes(CHUNK_SIZE * 2))

    api_client.post(f"/api/v1/sessions/{recording.id}/stop")

    assert Chunk.objects.filter(session=recording).count() == 2


def test_pause_keeps_the_tail_and_resume_continues_it(api_client, recording):
    data = screen_like(CHUNK_SIZE + 100)
    post_stream(api_client, recording, data[:1000])
    api_client.post(f"/api/v1/sessions/{recording.id}/pause")
    assert post_stream(api_client, recording, b"x").status_code == 409
    api_client.post(f"/api/v1/sessions/{recording.id}/resume")

    post_stream(api_client, recording, data[1000:])
    api_client.post(f"/api/v1/sessions/{recording.id}/stop")

    wait_until_settled(recording)
    assert body_of(api_client.get(f"/api/v1/sessions/{recording.id}/recording")) == data


def test_empty_append_changes_nothing(api_client, recording):
    response = post_stream(api_client, recording, b"")

    assert response.json() == {"received": 0, "offset": 0, "chunks": []}


def test_append_outside_recording_is_409(api_client, user):
    session = SessionFactory(owner=user, status="created", chunk_size=CHUNK_SIZE)

    response = post_stream(api_client, session, b"data")

    assert response.status_code == 409
    assert response.json()["status"] == "created"


def test_unacknowledged_bytes_of_an_interrupted_append_are_dropped(api_client, recording):
    acknowledged = random_bytes(1000)
    post_stream(api_client, recording, acknowledged)
    recording.refresh_from_db()
    stream = session_stream(session_id=recording.id, chunk_size=CHUNK_SIZE)
    with stream.locked():
        stream.append(
            offset=1000,
            part=recording.stream_part,
            pieces=[b"written but never acknowledged" * 3000],
        )

    post_stream(api_client, recording, b"after")
    api_client.post(f"/api/v1/sessions/{recording.id}/stop")

    wait_until_settled(recording)
    recording_bytes = body_of(api_client.get(f"/api/v1/sessions/{recording.id}/recording"))
    assert recording_bytes == acknowledged + b"after"
