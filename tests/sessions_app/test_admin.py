"""The operator console's session list: its columns in human units, its search and filters."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sessions_app.models import Session
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/sessions_app/session/"
STARTED = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)


@pytest.fixture
def superuser_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="admin-root", is_staff=True, is_superuser=True))
    return client


def _cells(body: str, session_name: str) -> dict[str, str]:
    """The text of each column of the row of the session with this name."""
    row = next(row for row in re.findall(r"<tr>.*?</tr>", body, re.S) if session_name in row)
    return {
        column: re.sub(r"<[^>]+>", "", text.replace("<br>", " ")).strip()
        for column, text in re.findall(r'<t[hd] class="field-(\w+)[^"]*"[^>]*>(.*?)</t[hd]>', row)
    }


def _stopped(name: str, *, minutes: int, **fields) -> Session:
    session = SessionFactory(name=name, status="stopped", **fields)
    Session.objects.filter(pk=session.pk).update(
        started_at=STARTED,
        stopped_at=STARTED + timedelta(minutes=minutes),
        size=12_900_000,
        compressed_size=4_030_000,
    )
    return session


def test_the_list_shows_started_duration_remote_user_size_and_ratio_in_human_units(
    superuser_client,
):
    _stopped("night shift", minutes=62, remote_user="CORP\\alice")

    cells = _cells(superuser_client.get(CHANGELIST).content.decode(), "night shift")

    assert cells["started"] == "2026-03-14 09:26"
    assert cells["recorded_duration"] == "1 h 02 min"
    assert cells["account"] == "CORP\\alice"
    assert cells["status"] == "Stopped"
    assert cells["size_display"] == "12.3 MiB"
    assert cells["ratio"] == "3.2×"


def test_the_duration_is_the_playing_time_when_time_marks_give_it(superuser_client):
    session = _stopped("marked", minutes=62)
    Session.objects.filter(pk=session.pk).update(duration_ms=(4 * 60 + 5) * 1000)

    cells = _cells(superuser_client.get(CHANGELIST).content.decode(), "marked")

    assert cells["recorded_duration"] == "4 min 05 s"


def test_a_session_not_yet_started_has_no_start_duration_or_ratio(superuser_client):
    SessionFactory(name="waiting")

    cells = _cells(superuser_client.get(CHANGELIST).content.decode(), "waiting")

    assert (cells["started"], cells["recorded_duration"], cells["ratio"]) == ("-", "-", "-")
    assert cells["size_display"] == "0 bytes"


def test_the_list_searches_remote_users_and_client_addresses(superuser_client):
    SessionFactory(name="alices", remote_user="CORP\\alice", client_address="192.0.2.10")
    SessionFactory(name="bobs", remote_user="CORP\\bob", client_address="198.51.100.7")

    for term in ["alice", "192.0.2"]:
        body = superuser_client.get(CHANGELIST, {"q": term}).content.decode()
        assert "alices" in body
        assert "bobs" not in body


def test_the_list_filters_by_start_date(superuser_client):
    _stopped("long ago", minutes=5)
    SessionFactory(name="started today", status="recording")

    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)

    body = superuser_client.get(CHANGELIST, {"started_at__gte": str(midnight)}).content.decode()

    assert "started today" in body
    assert "long ago" not in body


def test_the_session_page_shows_the_remote_user_and_client_address(superuser_client):
    session = SessionFactory(remote_user="CORP\\alice", client_address="2001:db8::1")

    body = superuser_client.get(f"{CHANGELIST}{session.pk}/change/").content.decode()

    assert "CORP\\alice" in body
    assert "2001:db8::1" in body
