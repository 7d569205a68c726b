"""The audit trail: a row for each audited action, read through /api/v1/audit, never changed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry
from tests.chunks_app.helpers import KIB, download, put_chunk, random_bytes
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


@pytest.fixture
def session(user):
    return SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)


def test_creating_a_session_through_the_api_is_audited_with_actor_and_address(api_client):
    response = api_client.post(
        "/api/v1/sessions", {"name": "audited"}, format="json", REMOTE_ADDR="10.1.2.3"
    )

    (entry,) = _entries("session_created")
    assert str(entry.session_id) == response.json()["id"]
    assert (entry.actor, entry.address) == ("operator", "10.1.2.3")
    assert entry.detail == {"name": "audited"}


def test_updating_a_session_is_audited_with_the_changes(api_client, session):
    api_client.patch(f"/api/v1/sessions/{session.id}", {"host": "dc9"}, format="json")

    (entry,) = _entries("session_updated")
    assert entry.detail == {"changed": {"host": "dc9"}}


def test_state_changes_are_audited(api_client, session):
    api_client.post(f"/api/v1/sessions/{session.id}/pause")

    entry = AuditEntry.objects.filter(action="session_state_changed").first()
    assert entry.detail == {"action": "pause", "from": "recording", "to": "paused"}
    assert entry.actor == "operator"


def test_pipeline_state_changes_are_audited(api_client, session):
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")

    (entry,) = _entries("pipeline_state_changed")
    assert entry.detail["to"] == "paused"


def test_deleting_a_session_is_audited_and_the_entry_outlives_it(api_client, session):
    api_client.delete(f"/api/v1/sessions/{session.id}")

    (entry,) = _entries("session_deleted")
    assert entry.session_id == session.id
    assert AuditEntry.objects.filter(session_id=session.id).count() >= 2


def test_downloads_and_manifest_reads_are_audited(api_client, session):
    put_chunk(api_client, session, 0, random_bytes(100))

    download(api_client, session, 0, range="bytes=0-9")
    api_client.get(f"/api/v1/sessions/{session.id}/recording")
    api_client.get(f"/api/v1/sessions/{session.id}/manifest")

    (chunk_entry,) = _entries("chunk_downloaded")
    assert (chunk_entry.sequence, chunk_entry.detail) == (0, {"range": "bytes=0-9"})
    assert len(_entries("recording_downloaded")) == 1
    assert len(_entries("manifest_read")) == 1


def test_failed_logins_are_audited(anonymous_client):
    anonymous_client.post(
        "/api/v1/auth/token",
        {"username": "mallory", "password": "guess"},
        format="json",
        REMOTE_ADDR="192.0.2.7",
    )

    (entry,) = _entries("login_failed")
    assert (entry.actor, entry.address) == ("mallory", "192.0.2.7")


def test_audit_api_lists_newest_first_and_filters(api_client, session):
    api_client.post(f"/api/v1/sessions/{session.id}/pause")
    other = SessionFactory(owner=UserFactory(username="rec", roles=["recorder"]))

    everything = api_client.get("/api/v1/audit").json()["results"]
    for_session = api_client.get(f"/api/v1/audit?session={session.id}").json()["results"]
    by_action = api_client.get("/api/v1/audit?action=session_state_changed").json()["results"]
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    future = api_client.get("/api/v1/audit", {"after": later}).json()["results"]

    assert [e["at"] for e in everything] == sorted((e["at"] for e in everything), reverse=True)
    assert {e["session_id"] for e in for_session} == {str(session.id)}
    assert str(other.id) in {e["session_id"] for e in everything}
    assert {e["action"] for e in by_action} == {"session_state_changed"}
    assert future == []


def test_audit_filter_by_user(api_client, session):
    auditor = UserFactory(username="aud", roles=["auditor"])
    api_client.force_authenticate(auditor)
    api_client.get(f"/api/v1/sessions/{session.id}/manifest")

    entries = api_client.get("/api/v1/audit?user=aud").json()["results"]

    assert [e["action"] for e in entries] == ["manifest_read"]


@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
def test_audit_entries_cannot_be_changed_through_the_api(api_client, session, method):
    entry = AuditEntry.objects.first()
    actor = entry.actor
    path = "/api/v1/audit" if method == "post" else f"/api/v1/audit/{entry.id}"

    response = getattr(api_client, method)(path, {"actor": "someone"}, format="json")

    assert response.status_code == 405
    entry.refresh_from_db()
    assert entry.actor == actor != "someone"


def test_token_endpoint_is_throttled_with_a_clear_429(anonymous_client, settings):
    attempts = [
        anonymous_client.post(
            "/api/v1/auth/token", {"username": "x", "password": "y"}, format="json"
        )
        for _ in range(11)
    ]

    assert [r.status_code for r in attempts[:10]] == [401] * 10
    assert attempts[10].status_code == 429
    assert attempts[10].json()["code"] == "throttled"
    assert attempts[10].has_header("Retry-After")


def _failed_login(client, **headers):
    return client.post(
        "/api/v1/auth/token", {"username": "x", "password": "y"}, format="json", **headers
    )


def test_a_forged_forwarded_for_header_moves_neither_the_throttle_nor_the_audit(anonymous_client):
    attempts = [
        _failed_login(anonymous_client, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(11)
    ]

    assert attempts[10].status_code == 429
    assert {entry.address for entry in _entries("login_failed")} == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("forwarded_for", "address"),
    [("203.0.113.9, 198.51.100.7", "198.51.100.7"), ("not-an-address", None)],
    ids=["client-behind-the-proxy", "garbage"],
)
def test_behind_trusted_proxies_the_audit_names_the_client_they_saw(
    anonymous_client, settings, forwarded_for, address
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    response = _failed_login(anonymous_client, HTTP_X_FORWARDED_FOR=forwarded_for)

    assert response.status_code == 401
    (entry,) = _entries("login_failed")
    assert entry.address == address
