"""Gaps in a session's sequences: `complete` on the session, the manifest's missing sequences."""

import importlib

import pytest
from django.apps import apps as django_apps

from sessions_app.models import Session
from tests.chunks_app.helpers import CHUNK_SIZE, post_stream, put_chunk, screen_like
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def upload(client, session: Session, sequences: list[int]) -> None:
    for sequence in sequences:
        body = screen_like(1000, seed=sequence)
        assert put_chunk(client, session, sequence, body).status_code == 201


def stop(client, session: Session) -> dict:
    response = client.post(f"/api/v1/sessions/{session.id}/stop")
    assert response.status_code == 200, response.content
    return response.json()


def manifest(client, session: Session) -> dict:
    return client.get(f"/api/v1/sessions/{session.id}/manifest").json()


def test_a_session_with_gaps_stops_and_shows_what_is_missing(api_client, recording):
    upload(api_client, recording, [0, 1, 2, 5])

    stopped = stop(api_client, recording)

    assert stopped["status"] == "stopped"
    assert stopped["complete"] is False
    assert api_client.get(f"/api/v1/sessions/{recording.id}").json()["complete"] is False
    body = manifest(api_client, recording)
    assert body["complete"] is False
    assert body["missing_sequences"] == [3, 4]
    assert body["missing_count"] == 2
    assert [chunk["sequence"] for chunk in body["chunks"]] == [0, 1, 2, 5]


def test_a_gapless_session_is_complete_once_stopped(api_client, recording):
    upload(api_client, recording, [2, 0, 1])

    stopped = stop(api_client, recording)

    assert stopped["complete"] is True
    body = manifest(api_client, recording)
    assert body["complete"] is True
    assert body["missing_sequences"] == []
    assert body["missing_count"] == 0


def test_a_session_still_recording_is_not_complete_and_lists_the_gaps_so_far(api_client, recording):
    upload(api_client, recording, [1, 3])

    assert api_client.get(f"/api/v1/sessions/{recording.id}").json()["complete"] is False
    body = manifest(api_client, recording)
    assert body["complete"] is False
    assert body["missing_sequences"] == [0, 2]
    assert body["missing_count"] == 2


def test_a_session_stopped_without_chunks_has_no_gap_and_is_complete(api_client, recording):
    stopped = stop(api_client, recording)

    assert stopped["complete"] is True
    body = manifest(api_client, recording)
    assert (body["complete"], body["missing_sequences"], body["missing_count"]) == (True, [], 0)


def test_the_missing_list_stops_at_1000_and_the_count_is_exact(api_client, recording):
    upload(api_client, recording, [0, 1500, 2**31 - 1])
    stop(api_client, recording)

    body = manifest(api_client, recording)

    assert body["missing_sequences"] == list(range(1, 1001))
    assert body["missing_count"] == 1499 + (2**31 - 1 - 1501)
    assert body["complete"] is False


def test_a_streamed_session_is_complete_after_stop(api_client, recording):
    assert post_stream(api_client, recording, screen_like(CHUNK_SIZE * 2 + 10)).status_code == 200

    stopped = stop(api_client, recording)

    assert stopped["chunk_count"] == 3
    assert stopped["complete"] is True
    assert manifest(api_client, recording)["missing_count"] == 0


def test_the_migration_marks_existing_stopped_sessions_by_their_sequences(api_client, user):
    migration = importlib.import_module("sessions_app.migrations.0007_session_complete")
    gapless = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    gapped = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    recording = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    upload(api_client, gapless, [0, 1])
    upload(api_client, gapped, [0, 2])
    upload(api_client, recording, [0, 1])
    stop(api_client, gapless)
    stop(api_client, gapped)
    empty = SessionFactory(owner=user, status="stopped")
    Session.objects.update(complete=False)

    migration.mark_complete(django_apps, None)

    complete = dict(Session.objects.values_list("pk", "complete"))
    assert complete == {gapless.pk: True, gapped.pk: False, recording.pk: False, empty.pk: True}
