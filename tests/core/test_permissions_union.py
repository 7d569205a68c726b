"""Roles combine per method and per object; sessions a caller may not read answer 404."""

import uuid

import pytest
from rest_framework.test import APIClient

from chunks_app.models import Chunk
from sessions_app.models import Session
from tests.chunks_app.helpers import CHUNK_SIZE
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(username: str, roles: list[str]) -> tuple[APIClient, object]:
    user = UserFactory(username=username, roles=roles)
    client = APIClient()
    client.force_authenticate(user)
    return client, user


def _put_chunk(client: APIClient, session_id: object, sequence: int = 0):
    return client.generic(
        "PUT",
        f"/api/v1/sessions/{session_id}/chunks/{sequence}",
        b"chunk bytes",
        content_type="application/octet-stream",
    )


def _session_of(username: str, status: str = "recording") -> Session:
    owner = UserFactory(username=username, roles=["recorder"])
    return SessionFactory(owner=owner, status=status, chunk_size=CHUNK_SIZE, name="theirs")


@pytest.fixture
def recorder_auditor() -> tuple[APIClient, object]:
    return _client("recorder-auditor", ["recorder", "auditor"])


@pytest.mark.parametrize(
    ("method", "suffix", "status"),
    [
        ("patch", "", "recording"),
        ("post", "/pause", "recording"),
        ("post", "/resume", "paused"),
        ("post", "/stop", "recording"),
        ("delete", "", "recording"),
    ],
)
def test_recorder_and_auditor_cannot_change_another_users_session(
    recorder_auditor, method: str, suffix: str, status: str
) -> None:
    client, _ = recorder_auditor
    session = _session_of("someone-else", status=status)

    path = f"/api/v1/sessions/{session.id}{suffix}"
    response = getattr(client, method)(path, {"name": "renamed"}, format="json")

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"
    session.refresh_from_db()
    assert (session.name, session.status) == ("theirs", status)


def test_recorder_and_auditor_cannot_put_a_chunk_into_another_users_session(
    recorder_auditor,
) -> None:
    client, _ = recorder_auditor
    session = _session_of("someone-else")

    response = _put_chunk(client, session.id)

    assert response.status_code == 403, response.content
    assert not Chunk.objects.filter(session=session).exists()


def test_recorder_and_auditor_reads_another_users_session_and_chunks(
    recorder_auditor, api_client
) -> None:
    client, _ = recorder_auditor
    session = _session_of("someone-else")
    assert _put_chunk(api_client, session.id).status_code == 201

    for path in ("", "/chunks", "/chunks/0"):
        response = client.get(f"/api/v1/sessions/{session.id}{path}")
        assert response.status_code == 200, (path, response.content)


def test_recorder_and_auditor_still_writes_its_own_session(recorder_auditor) -> None:
    client, user = recorder_auditor
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)

    assert _put_chunk(client, session.id).status_code == 201
    response = client.patch(f"/api/v1/sessions/{session.id}", {"name": "mine"}, format="json")
    assert response.status_code == 200, response.content
    assert client.post(f"/api/v1/sessions/{session.id}/pause").status_code == 200


def test_an_auditor_writing_a_session_gets_403() -> None:
    client, _ = _client("auditor", ["auditor"])
    session = _session_of("someone-else")

    response = client.patch(f"/api/v1/sessions/{session.id}", {"name": "x"}, format="json")

    assert response.status_code == 403


def _masked(response, session_id: object) -> dict:
    body = response.json()
    return {**body, "message": body["message"].replace(str(session_id), "<id>")}


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("put", "/chunks/0"),
        ("get", "/chunks"),
        ("get", "/chunks/0"),
        ("get", "/chunks/0/download"),
    ],
)
def test_another_recorders_session_answers_like_an_unknown_id(
    api_client, method: str, suffix: str
) -> None:
    client, _ = _client("recorder", ["recorder"])
    session = _session_of("someone-else")
    assert _put_chunk(api_client, session.id).status_code == 201
    unknown = uuid.uuid4()

    def send(session_id: object):
        path = f"/api/v1/sessions/{session_id}{suffix}"
        if method == "put":
            return _put_chunk(client, session_id, sequence=1)
        if method == "patch":
            return client.patch(path, {"name": "renamed"}, format="json")
        return client.get(path)

    theirs, missing = send(session.id), send(unknown)

    assert (theirs.status_code, missing.status_code) == (404, 404), theirs.content
    assert _masked(theirs, session.id) == _masked(missing, unknown)
    assert theirs.json()["code"] == "not_found"
    session.refresh_from_db()
    assert session.name == "theirs"


def test_an_operator_still_writes_any_session() -> None:
    client, _ = _client("operator", ["operator"])
    session = _session_of("someone-else")

    assert _put_chunk(client, session.id).status_code == 201
    response = client.patch(f"/api/v1/sessions/{session.id}", {"name": "ops"}, format="json")
    assert response.status_code == 200, response.content
    assert client.post(f"/api/v1/sessions/{session.id}/pause").status_code == 200
