"""The /api/v1/sessions endpoints as a client sees them."""

import uuid

import pytest

from core.sizes import MIB
from sessions_app.models import Session
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db
LEVEL = "compression_level"


def test_create_returns_the_session_with_system_defaults(api_client, user):
    response = api_client.post("/api/v1/sessions", {"name": "audit 1"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "audit 1"
    assert body["owner"] == "operator"
    assert body["status"] == "created"
    assert body["chunk_size"] == 10 * MIB
    assert body["compression_algorithm"] == "zstd"
    assert body["compression_level"] == 6
    assert body["metadata"] == {}
    assert body["size"] == 0 and body["chunk_count"] == 0 and body["compressed_size"] == 0
    assert body["compression_ratio"] is None
    assert body["legal_hold"] is False and body["retention_days"] is None
    assert Session.objects.get(pk=body["id"]).owner == user


def test_create_accepts_every_writable_field(api_client):
    payload = {
        "name": "rdp-42",
        "host": "dc01.corp.test",
        "metadata": {"ticket": "SEC-1", "tags": ["a", "b"]},
        "chunk_size": 256 * 1024,
        "compression_algorithm": "gzip",
        "compression_level": 9,
        "retention_days": 7,
        "legal_hold": True,
    }
    response = api_client.post("/api/v1/sessions", payload, format="json")

    assert response.status_code == 201
    body = response.json()
    assert {key: body[key] for key in payload} == payload


def test_create_uses_the_codec_default_level_for_a_non_default_algorithm(api_client):
    response = api_client.post(
        "/api/v1/sessions", {"name": "x", "compression_algorithm": "lz4"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["compression_level"] == 0


def test_create_ignores_read_only_fields(api_client):
    response = api_client.post(
        "/api/v1/sessions", {"name": "x", "status": "stopped", "size": 99}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["status"] == "created"
    assert response.json()["size"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "x", "chunk_size": 1024}, "chunk_size"),
        ({"name": "x", "chunk_size": 65 * MIB}, "chunk_size"),
        ({"name": "x", "chunk_size": "big"}, "chunk_size"),
        ({"name": "x", "compression_algorithm": "brotli"}, "compression_algorithm"),
        ({"name": "x", "compression_algorithm": "zstd", "compression_level": 23}, LEVEL),
        ({"name": "x", "compression_algorithm": "gzip", "compression_level": 0}, LEVEL),
        ({"name": "x", "compression_algorithm": "lz4", "compression_level": 17}, LEVEL),
        ({"name": "x", "compression_algorithm": "none", "compression_level": 3}, LEVEL),
        ({"name": "x", "metadata": [1, 2]}, "metadata"),
        ({"name": "x", "metadata": {"blob": "x" * (64 * 1024)}}, "metadata"),
        ({"name": "x", "retention_days": -1}, "retention_days"),
        ({"name": "x", "legal_hold": "maybe"}, "legal_hold"),
    ],
)
def test_create_rejects_invalid_input_naming_the_field(api_client, payload, field):
    response = api_client.post("/api/v1/sessions", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["fields"]
    assert body["message"]
    assert not Session.objects.exists()


def test_create_rejects_malformed_json_with_400(api_client):
    response = api_client.post(
        "/api/v1/sessions", data='{"name": ', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_create_rejects_a_json_body_that_is_not_an_object(api_client):
    response = api_client.post("/api/v1/sessions", data="[1]", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_retrieve_returns_the_session(api_client, user):
    session = SessionFactory(owner=user, name="one")

    response = api_client.get(f"/api/v1/sessions/{session.id}")

    assert response.status_code == 200
    assert response.json()["id"] == str(session.id)
    assert response.json()["name"] == "one"


def test_paths_also_work_with_a_trailing_slash(api_client, user):
    session = SessionFactory(owner=user)

    assert api_client.get("/api/v1/sessions/").status_code == 200
    assert api_client.get(f"/api/v1/sessions/{session.id}/").status_code == 200


@pytest.mark.parametrize("session_id", [str(uuid.uuid4()), "not-a-uuid", "123", "%20"])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("put", ""),
        ("delete", ""),
        ("post", "/start"),
        ("post", "/stop"),
        ("post", "/pause"),
        ("post", "/resume"),
    ],
)
def test_unknown_or_malformed_id_is_404(api_client, session_id, method, suffix):
    response = getattr(api_client, method)(
        f"/api/v1/sessions/{session_id}{suffix}", {"name": "x"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_patch_changes_only_the_given_fields(api_client, user):
    session = SessionFactory(owner=user, name="before", host="h1")

    response = api_client.patch(f"/api/v1/sessions/{session.id}", {"name": "after"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "after"
    assert response.json()["host"] == "h1"
    session.refresh_from_db()
    assert session.name == "after"


def test_put_replaces_the_writable_fields(api_client, user):
    session = SessionFactory(owner=user, name="before", host="h1")

    response = api_client.put(
        f"/api/v1/sessions/{session.id}",
        {"name": "after", "host": "", "metadata": {"k": 1}, "legal_hold": True},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["host"], body["metadata"], body["legal_hold"]) == (
        "after",
        "",
        {"k": 1},
        True,
    )


def test_put_without_the_required_name_is_400(api_client, user):
    session = SessionFactory(owner=user)

    response = api_client.put(f"/api/v1/sessions/{session.id}", {"host": "x"}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()["fields"]


def test_recording_format_can_change_while_created(api_client, user):
    session = SessionFactory(owner=user)

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}",
        {"chunk_size": 2 * MIB, "compression_algorithm": "gzip", "compression_level": 1},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["chunk_size"], body["compression_algorithm"], body["compression_level"]) == (
        2 * MIB,
        "gzip",
        1,
    )


def test_changing_the_algorithm_alone_takes_its_default_level(api_client, user):
    session = SessionFactory(owner=user, compression_algorithm="zstd", compression_level=19)

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}", {"compression_algorithm": "gzip"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["compression_level"] == 6


def test_patch_validates_the_recording_format(api_client, user):
    session = SessionFactory(owner=user)

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}", {"compression_level": 40}, format="json"
    )

    assert response.status_code == 400
    assert "compression_level" in response.json()["fields"]


@pytest.mark.parametrize("status", ["recording", "paused", "stopped"])
@pytest.mark.parametrize(
    "change", [{"chunk_size": 2 * MIB}, {"compression_algorithm": "lz4"}, {"compression_level": 3}]
)
def test_recording_format_is_locked_once_started(api_client, user, status, change):
    session = SessionFactory(owner=user, status=status)

    response = api_client.patch(f"/api/v1/sessions/{session.id}", change, format="json")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "field_locked"
    assert body["status"] == status
    assert set(change) <= set(body["fields"])
    session.refresh_from_db()
    assert (session.chunk_size, session.compression_algorithm, session.compression_level) == (
        MIB,
        "zstd",
        6,
    )


def test_unchanged_recording_format_is_accepted_after_start(api_client, user):
    session = SessionFactory(owner=user, status="recording")

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}",
        {"chunk_size": MIB, "name": "renamed", "legal_hold": True},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["name"] == "renamed"


def test_delete_removes_the_session(api_client, user):
    session = SessionFactory(owner=user)

    response = api_client.delete(f"/api/v1/sessions/{session.id}")

    assert response.status_code == 204
    assert not Session.objects.filter(pk=session.pk).exists()
    assert api_client.get(f"/api/v1/sessions/{session.id}").status_code == 404


def test_delete_under_legal_hold_is_409_and_keeps_the_session(api_client, user):
    session = SessionFactory(owner=user, legal_hold=True)

    response = api_client.delete(f"/api/v1/sessions/{session.id}")

    assert response.status_code == 409
    assert response.json()["code"] == "legal_hold"
    assert Session.objects.filter(pk=session.pk).exists()


@pytest.mark.parametrize(
    ("start", "action", "end"),
    [
        ("created", "start", "recording"),
        ("recording", "pause", "paused"),
        ("paused", "resume", "recording"),
        ("recording", "stop", "stopped"),
        ("paused", "stop", "stopped"),
    ],
)
def test_valid_transition_returns_the_session_in_its_new_status(
    api_client, user, start, action, end
):
    session = SessionFactory(owner=user, status=start)

    response = api_client.post(f"/api/v1/sessions/{session.id}/{action}")

    assert response.status_code == 200
    assert response.json()["status"] == end
    session.refresh_from_db()
    assert session.status == end


INVALID_TRANSITIONS = [
    (status, action)
    for status in ["created", "recording", "paused", "stopped", "failed"]
    for action in ["start", "pause", "resume", "stop"]
    if (status, action)
    not in {
        ("created", "start"),
        ("recording", "pause"),
        ("paused", "resume"),
        ("recording", "stop"),
        ("paused", "stop"),
    }
]


@pytest.mark.parametrize(("status", "action"), INVALID_TRANSITIONS)
def test_invalid_transition_is_409_naming_the_current_status(api_client, user, status, action):
    session = SessionFactory(owner=user, status=status)

    response = api_client.post(f"/api/v1/sessions/{session.id}/{action}")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert body["status"] == status
    assert status in body["message"]
    session.refresh_from_db()
    assert session.status == status


def test_start_and_stop_set_their_timestamps(api_client, user):
    session = SessionFactory(owner=user)

    started = api_client.post(f"/api/v1/sessions/{session.id}/start").json()
    stopped = api_client.post(f"/api/v1/sessions/{session.id}/stop").json()

    assert started["started_at"] is not None and started["stopped_at"] is None
    assert stopped["stopped_at"] is not None
    assert stopped["stopped_at"] >= stopped["started_at"]


def test_control_actions_reject_get(api_client, user):
    session = SessionFactory(owner=user)

    response = api_client.get(f"/api/v1/sessions/{session.id}/start")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
