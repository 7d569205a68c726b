"""The player on a video/mp4 session's admin page; other recordings keep their downloads only."""

import pytest
from django.contrib.staticfiles import finders

from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

PLAYER_SCRIPT = '<script type="module" src="/static/lucid/player.js"></script>'


def page_of(client, session) -> str:
    response = client.get(f"/admin/sessions_app/session/{session.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("role", ["superuser", "operator", "auditor"])
@pytest.mark.parametrize("content_type", ["video/mp4", "video/mp4; codecs=avc1.64001f"])
def test_a_video_mp4_session_page_has_the_player(clients, role, content_type):
    session = SessionFactory(content_type=content_type, status="stopped")

    body = page_of(clients[role], session)

    assert PLAYER_SCRIPT in body
    assert '<link rel="stylesheet" href="/static/lucid/player.css">' in body
    assert 'id="session-player"' in body
    assert "<video" in body
    assert f'data-timeline-url="/api/v1/sessions/{session.pk}/timeline"' in body
    assert f'data-playlist-url="/api/v1/sessions/{session.pk}/playlist.m3u8"' in body
    assert f'data-recording-url="/api/v1/sessions/{session.pk}/recording"' in body
    assert 'data-live="false"' in body
    assert "Download recording" in body


@pytest.mark.parametrize("status", ["created", "recording", "paused"])
def test_a_video_session_that_may_still_grow_is_played_live(clients, status):
    session = SessionFactory(content_type="video/mp4", status=status)

    body = page_of(clients["operator"], session)

    assert 'data-live="true"' in body


def test_a_failed_video_session_is_played_from_its_timeline(clients):
    session = SessionFactory(content_type="video/mp4", status="failed")

    body = page_of(clients["operator"], session)

    assert 'data-live="false"' in body


@pytest.mark.parametrize("content_type", ["application/octet-stream", "video/webm"])
def test_another_content_type_has_the_downloads_and_no_player(clients, content_type):
    session = SessionFactory(content_type=content_type, status="stopped")

    body = page_of(clients["operator"], session)

    assert "player.js" not in body
    assert 'id="session-player"' not in body
    assert "<video" not in body
    assert "Download recording" in body
    assert f'href="/api/v1/sessions/{session.pk}/recording"' in body
    assert f'href="/api/v1/sessions/{session.pk}/manifest"' in body


def test_the_player_files_are_static_files_of_the_project():
    assert finders.find("lucid/player.js")
    assert finders.find("lucid/player.css")
