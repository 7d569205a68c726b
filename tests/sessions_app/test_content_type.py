"""A session's `content_type`: set while created, checked as a media type, served by /recording."""

import pytest

from tests.chunks_app.helpers import CHUNK_SIZE, body_of, download, post_stream, screen_like
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db

VALID = [
    "video/mp4",
    'video/mp4; codecs="avc1.64001f"',
    "video/mp4;codecs=avc1.64001f",
    "text/plain; charset=utf-8",
    "application/vnd.apple.mpegurl",
    "application/x-asciicast+json",
]
INVALID = ["mp4", "video/", "/mp4", "a/b/c", "video/mp4;", "video mp4", "", "video/" + "x" * 250]


def create(client, **fields):
    return client.post("/api/v1/sessions", {"name": "typed", **fields}, format="json")


def test_a_new_session_is_application_octet_stream(api_client):
    response = create(api_client)

    assert response.status_code == 201
    assert response.json()["content_type"] == "application/octet-stream"


@pytest.mark.parametrize("content_type", VALID)
def test_a_media_type_is_taken_at_create(api_client, content_type):
    response = create(api_client, content_type=content_type)

    assert response.status_code == 201
    assert response.json()["content_type"] == content_type
    session_id = response.json()["id"]
    assert api_client.get(f"/api/v1/sessions/{session_id}").json()["content_type"] == content_type


@pytest.mark.parametrize("content_type", INVALID)
def test_a_malformed_media_type_at_create_is_400_naming_the_field(api_client, content_type):
    response = create(api_client, content_type=content_type)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "content_type" in response.json()["fields"]


def test_content_type_changes_while_created(api_client, user):
    session = SessionFactory(owner=user)

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}", {"content_type": "video/mp4"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["content_type"] == "video/mp4"
    session.refresh_from_db()
    assert session.content_type == "video/mp4"


@pytest.mark.parametrize("content_type", INVALID)
def test_a_malformed_media_type_by_patch_is_400_and_changes_nothing(api_client, user, content_type):
    session = SessionFactory(owner=user, content_type="video/mp4")

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}", {"content_type": content_type}, format="json"
    )

    assert response.status_code == 400
    assert "content_type" in response.json()["fields"]
    session.refresh_from_db()
    assert session.content_type == "video/mp4"


@pytest.mark.parametrize("status", ["recording", "paused", "stopped"])
def test_content_type_is_locked_once_started(api_client, user, status):
    session = SessionFactory(owner=user, status=status, content_type="video/mp4")

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}", {"content_type": "video/webm"}, format="json"
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "field_locked"
    assert "content_type" in body["fields"]
    session.refresh_from_db()
    assert session.content_type == "video/mp4"


def test_patching_the_same_content_type_after_start_changes_nothing_and_is_fine(api_client, user):
    session = SessionFactory(owner=user, status="recording", content_type="video/mp4")

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}", {"content_type": "video/mp4"}, format="json"
    )

    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("content_type", ["video/mp4", 'video/mp4; codecs="avc1.64001f"'])
def test_recording_is_served_with_the_sessions_content_type(api_client, user, content_type):
    session = SessionFactory(
        owner=user, status="recording", chunk_size=CHUNK_SIZE, content_type=content_type
    )
    data = screen_like(CHUNK_SIZE + 100)
    post_stream(api_client, session, data)
    api_client.post(f"/api/v1/sessions/{session.id}/stop")
    url = f"/api/v1/sessions/{session.id}/recording"

    whole = api_client.get(url)
    part = api_client.get(url, HTTP_RANGE="bytes=10-19")
    head = api_client.head(url)

    assert whole.status_code == 200
    assert whole["Content-Type"] == content_type
    assert body_of(whole) == data
    assert part.status_code == 206
    assert part["Content-Type"] == content_type
    assert body_of(part) == data[10:20]
    assert head.status_code == 200
    assert head["Content-Type"] == content_type


@pytest.mark.django_db(transaction=True)
def test_recording_is_served_whatever_the_player_accepts(api_client, user):
    session = SessionFactory(
        owner=user, status="recording", chunk_size=CHUNK_SIZE, content_type="video/mp4"
    )
    post_stream(api_client, session, b"media bytes")
    api_client.post(f"/api/v1/sessions/{session.id}/stop")

    response = api_client.get(
        f"/api/v1/sessions/{session.id}/recording", HTTP_ACCEPT="video/webm,video/*;q=0.9"
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert body_of(response) == b"media bytes"


@pytest.mark.django_db(transaction=True)
def test_a_chunk_download_stays_application_octet_stream(api_client, user):
    session = SessionFactory(
        owner=user, status="recording", chunk_size=CHUNK_SIZE, content_type="video/mp4"
    )
    post_stream(api_client, session, screen_like(CHUNK_SIZE + 100))
    api_client.post(f"/api/v1/sessions/{session.id}/stop")

    response = download(api_client, session, 0)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"


def test_an_untyped_recording_is_application_octet_stream(api_client, user):
    session = SessionFactory(owner=user, status="stopped")

    response = api_client.get(f"/api/v1/sessions/{session.id}/recording")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
