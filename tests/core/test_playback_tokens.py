"""Playback tokens: a playlist's `?token=` reads that session's recording, and does nothing else."""

import re
import time

import pytest
from django.core import signing
from rest_framework.test import APIClient

from core.models import AuditEntry
from core.playback_tokens import playback_token_issue
from sessions_app.models import Session
from tests.chunks_app.helpers import CHUNK_SIZE, body_of, random_bytes
from tests.chunks_app.marked_uploads import append_marked, stop
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = re.compile(r"recording\.mp4\?token=([^\"\s]+)")


def recorded_video(owner) -> tuple[Session, bytes]:
    """A stopped video/mp4 session: 100 bytes of init, then two marked fragments."""
    session = SessionFactory(
        owner=owner, status="recording", chunk_size=CHUNK_SIZE, content_type="video/mp4"
    )
    data = random_bytes(3000)
    client = APIClient()
    client.force_authenticate(owner)
    append_marked(client, session, data[:100])
    append_marked(client, session, data[100:1000], time_ms=0)
    append_marked(client, session, data[1000:], time_ms=1000)
    stop(client, session, duration_ms=2000)
    return session, data


def token_from_playlist(user, session: Session) -> str:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/v1/sessions/{session.id}/playlist.m3u8")
    assert response.status_code == 200, response.content
    tokens = set(TOKEN.findall(response.content.decode()))
    assert len(tokens) == 1
    return tokens.pop()


def recording_url(session: Session, token: str) -> str:
    return f"/api/v1/sessions/{session.id}/recording?token={token}"


def flipped(token: str, index: int) -> str:
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def refused_with(response, code: str) -> None:
    assert response.status_code == 403, response.content
    assert response.json()["code"] == code


@pytest.fixture
def video(user) -> tuple[Session, bytes]:
    return recorded_video(user)


@pytest.fixture
def token(user, video) -> str:
    return token_from_playlist(user, video[0])


def test_a_playlists_token_reads_the_recording_with_no_other_credentials(
    anonymous_client, video, token
):
    session, data = video

    whole = anonymous_client.get(recording_url(session, token))
    part = anonymous_client.get(recording_url(session, token), HTTP_RANGE="bytes=100-999")

    assert whole.status_code == 200
    assert body_of(whole) == data
    assert part.status_code == 206
    assert body_of(part) == data[100:1000]


def test_a_playlists_token_answers_head(anonymous_client, video, token):
    session, data = video

    response = anonymous_client.head(recording_url(session, token))

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Type"] == "video/mp4"


def test_a_token_reads_as_the_user_who_got_the_playlist(anonymous_client, video):
    session, _ = video
    auditor = UserFactory(username="auditor", roles=["auditor"])
    token = token_from_playlist(auditor, session)

    anonymous_client.get(recording_url(session, token), HTTP_RANGE="bytes=0-99")

    entry = AuditEntry.objects.filter(action="recording_downloaded", session_id=session.id).get()
    assert entry.actor == "auditor"
    assert entry.detail == {"range": "bytes=0-99"}


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_tampered_token_is_403_invalid(anonymous_client, video, token, where):
    session, _ = video
    index = {"start": 0, "middle": len(token) // 2, "end": len(token) - 1}[where]

    response = anonymous_client.get(recording_url(session, flipped(token, index)))

    refused_with(response, "playback_token_invalid")


@pytest.mark.parametrize("garbage", ["", "garbage", "a:b:c", "%00", "x" * 5000])
def test_a_token_we_did_not_sign_is_403_invalid(anonymous_client, video, garbage):
    session, _ = video

    response = anonymous_client.get(recording_url(session, garbage))

    refused_with(response, "playback_token_invalid")


def test_a_token_signed_for_something_else_is_403_invalid(anonymous_client, video, user):
    session, _ = video
    other = signing.dumps({"s": str(session.id), "u": str(user.pk), "e": 2**40})

    response = anonymous_client.get(recording_url(session, other))

    refused_with(response, "playback_token_invalid")


def test_an_expired_token_is_403_expired(anonymous_client, video, user):
    session, _ = video
    token = playback_token_issue(session_id=session.id, user_id=user.pk, seconds=-1)

    response = anonymous_client.get(recording_url(session, token))

    refused_with(response, "playback_token_expired")


@pytest.mark.parametrize(
    ("setting", "later", "works"),
    [(None, 3590, True), (None, 3610, False), (60, 50, True), (60, 70, False)],
)
def test_a_token_lasts_an_hour_or_as_long_as_the_setting_says(
    anonymous_client, monkeypatch, settings, video, user, setting, later, works
):
    if setting is not None:
        settings.LUCID_PLAYBACK_TOKEN_SECONDS = setting
    session, _ = video
    token = token_from_playlist(user, session)
    now = time.time
    monkeypatch.setattr(time, "time", lambda: now() + later)

    response = anonymous_client.get(recording_url(session, token), HTTP_RANGE="bytes=0-0")

    if works:
        assert response.status_code == 206
    else:
        refused_with(response, "playback_token_expired")


def test_another_sessions_token_is_403_wrong_session(anonymous_client, video, token, user):
    other, _ = recorded_video(user)

    response = anonymous_client.get(recording_url(other, token))

    refused_with(response, "playback_token_wrong_session")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_token_on_the_recording_with_any_other_method_is_403_get_only(
    anonymous_client, video, token, method
):
    session, _ = video

    response = getattr(anonymous_client, method)(recording_url(session, token))

    refused_with(response, "playback_token_get_only")
    assert Session.objects.filter(pk=session.id).exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/sessions/{id}/stream"),
        ("put", "/api/v1/sessions/{id}/chunks/9"),
        ("post", "/api/v1/sessions/{id}/stop"),
        ("delete", "/api/v1/sessions/{id}"),
        ("patch", "/api/v1/sessions/{id}"),
        ("post", "/api/v1/sessions"),
    ],
)
def test_a_token_does_not_authenticate_writes_elsewhere(
    anonymous_client, video, token, method, path
):
    session, _ = video

    response = anonymous_client.generic(
        method.upper(),
        f"{path.format(id=session.id)}?token={token}",
        b"bytes",
        content_type="application/octet-stream",
    )

    assert response.status_code == 401, response.content
    assert response.json()["code"] == "not_authenticated"
    assert Session.objects.filter(pk=session.id).exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sessions",
        "/api/v1/sessions/{id}",
        "/api/v1/sessions/{id}/timeline",
        "/api/v1/sessions/{id}/playlist.m3u8",
        "/api/v1/sessions/{id}/manifest",
        "/api/v1/sessions/{id}/chunks",
        "/api/v1/sessions/{id}/chunks/0/download",
        "/api/v1/audit",
        "/api/v1/auth/me",
    ],
)
def test_a_token_does_not_authenticate_reads_elsewhere(anonymous_client, video, token, path):
    session, _ = video

    response = anonymous_client.get(f"{path.format(id=session.id)}?token={token}")

    assert response.status_code == 401, response.content
    assert response.json()["code"] == "not_authenticated"


def test_a_deactivated_users_token_is_403_invalid(anonymous_client, video):
    session, _ = video
    auditor = UserFactory(username="auditor", roles=["auditor"])
    token = token_from_playlist(auditor, session)
    auditor.is_active = False
    auditor.save(update_fields=["is_active"])

    response = anonymous_client.get(recording_url(session, token))

    refused_with(response, "playback_token_invalid")


def test_a_deleted_users_token_is_403_invalid(anonymous_client, video):
    session, _ = video
    auditor = UserFactory(username="auditor", roles=["auditor"])
    token = token_from_playlist(auditor, session)
    auditor.delete()

    response = anonymous_client.get(recording_url(session, token))

    refused_with(response, "playback_token_invalid")


def test_a_token_whose_user_lost_the_right_to_read_reads_nothing(anonymous_client, video):
    session, _ = video
    auditor = UserFactory(username="auditor", roles=["auditor"])
    token = token_from_playlist(auditor, session)
    auditor.groups.clear()

    response = anonymous_client.get(recording_url(session, token))

    assert response.status_code in (403, 404)
    assert "code" in response.json()


def test_a_recorders_token_reads_its_own_session(anonymous_client):
    recorder = UserFactory(username="recorder", roles=["recorder"])
    session, data = recorded_video(recorder)
    token = token_from_playlist(recorder, session)

    response = anonymous_client.get(recording_url(session, token))

    assert response.status_code == 200
    assert body_of(response) == data
