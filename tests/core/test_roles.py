"""Every role against every API route: who may do what, on whose sessions."""

import pytest
from rest_framework.test import APIClient

from tests.chunks_app.helpers import KIB
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ["recorder", "operator", "auditor", "superuser", "nobody"]
MINE, THEIRS = "mine", "theirs"

# (method, path, whose session) -> the status each role gets; 2xx/4xx as a user would see them.
ALLOWED, DENIED = "allowed", "denied"
TABLE = [
    # method, path, owner, recorder, operator, auditor, superuser, nobody
    ("get", "/api/v1/sessions", None, ALLOWED, ALLOWED, ALLOWED, ALLOWED, DENIED),
    ("post", "/api/v1/sessions", None, ALLOWED, ALLOWED, DENIED, ALLOWED, DENIED),
    ("get", "/api/v1/sessions/statistics", None, DENIED, ALLOWED, ALLOWED, ALLOWED, DENIED),
    ("get", "/api/v1/audit", None, DENIED, ALLOWED, ALLOWED, ALLOWED, DENIED),
    ("get", "/api/v1/auth/me", None, ALLOWED, ALLOWED, ALLOWED, ALLOWED, DENIED),
    *[
        row
        for owner in (MINE, THEIRS)
        for row in [
            ("get", "/api/v1/sessions/{id}", owner, *(["own"] + [ALLOWED] * 3 + [DENIED])),
            ("patch", "/api/v1/sessions/{id}", owner, *["own", ALLOWED, DENIED, ALLOWED, DENIED]),
            ("delete", "/api/v1/sessions/{id}", owner, *[DENIED, ALLOWED, DENIED, ALLOWED, DENIED]),
            (
                "post",
                "/api/v1/sessions/{id}/stop",
                owner,
                *["own", ALLOWED, DENIED, ALLOWED, DENIED],
            ),
            (
                "get",
                "/api/v1/sessions/{id}/statistics",
                owner,
                *(["own"] + [ALLOWED] * 3 + [DENIED]),
            ),
            ("get", "/api/v1/sessions/{id}/chunks", owner, *(["own"] + [ALLOWED] * 3 + [DENIED])),
            ("get", "/api/v1/sessions/{id}/chunks/0", owner, *(["own"] + [ALLOWED] * 3 + [DENIED])),
            (
                "put",
                "/api/v1/sessions/{id}/chunks/1",
                owner,
                *["own", ALLOWED, DENIED, ALLOWED, DENIED],
            ),
            (
                "post",
                "/api/v1/sessions/{id}/stream",
                owner,
                *["own", ALLOWED, DENIED, ALLOWED, DENIED],
            ),
            (
                "get",
                "/api/v1/sessions/{id}/chunks/0/download",
                owner,
                *(["own"] + [ALLOWED] * 3 + [DENIED]),
            ),
            (
                "get",
                "/api/v1/sessions/{id}/recording",
                owner,
                *(["own"] + [ALLOWED] * 3 + [DENIED]),
            ),
            ("get", "/api/v1/sessions/{id}/manifest", owner, *(["own"] + [ALLOWED] * 3 + [DENIED])),
            ("get", "/api/v1/sessions/{id}/pipeline", owner, *(["own"] + [ALLOWED] * 3 + [DENIED])),
            (
                "post",
                "/api/v1/sessions/{id}/pipeline/pause",
                owner,
                *[DENIED, ALLOWED, DENIED, ALLOWED, DENIED],
            ),
        ]
    ],
]


def _client_for(role: str) -> tuple[APIClient, object]:
    if role == "superuser":
        user = UserFactory(username="root", is_superuser=True, is_staff=True)
    else:
        user = UserFactory(username=role, roles=[] if role == "nobody" else [role])
    client = APIClient()
    client.force_authenticate(user)
    return client, user


def _cases():
    for method, path, owner, *outcomes in TABLE:
        for role, outcome in zip(ROLES, outcomes, strict=True):
            yield pytest.param(
                method, path, owner, role, outcome, id=f"{role}-{method}-{path}-{owner}"
            )


@pytest.mark.parametrize(("method", "path", "owner", "role", "outcome"), list(_cases()))
def test_role_against_route(method, path, owner, role, outcome, api_client):
    client, user = _client_for(role)
    owner_user = user if owner == MINE else UserFactory(username="someone-else", roles=["recorder"])
    session = SessionFactory(owner=owner_user, status="recording", chunk_size=64 * KIB)
    api_client.generic(
        "PUT",
        f"/api/v1/sessions/{session.id}/chunks/0",
        b"first chunk",
        content_type="application/octet-stream",
    )
    body = {"name": "renamed"} if method in ("patch", "post") else None
    kwargs = {"data": body, "format": "json"} if body else {}
    if method == "put":
        kwargs = {"data": b"bytes", "content_type": "application/octet-stream"}
        response = client.generic("PUT", path.format(id=session.id), **kwargs)
    else:
        response = getattr(client, method)(path.format(id=session.id), **kwargs)

    if outcome == "own":
        outcome = ALLOWED if owner == MINE else DENIED
    if outcome == ALLOWED:
        assert response.status_code < 400 or response.status_code == 409, response.content
    else:
        assert response.status_code in (403, 404), response.content
        assert response.json()["code"] in ("permission_denied", "not_found")


def test_a_recorder_lists_only_its_own_sessions():
    client, recorder = _client_for("recorder")
    SessionFactory(owner=recorder, name="mine")
    SessionFactory(owner=UserFactory(username="other", roles=["recorder"]), name="theirs")

    names = [s["name"] for s in client.get("/api/v1/sessions").json()["results"]]

    assert names == ["mine"]


def test_a_recorder_cannot_set_legal_hold():
    client, recorder = _client_for("recorder")
    session = SessionFactory(owner=recorder)

    response = client.patch(f"/api/v1/sessions/{session.id}", {"legal_hold": True}, format="json")

    assert response.status_code == 403
    session.refresh_from_db()
    assert not session.legal_hold


def test_an_operator_cannot_delete_a_session_under_legal_hold():
    client, _ = _client_for("operator")
    session = SessionFactory(owner=UserFactory(username="rec", roles=["recorder"]), legal_hold=True)

    assert client.delete(f"/api/v1/sessions/{session.id}").status_code == 409


def test_a_user_in_no_role_gets_403_with_advice():
    client, _ = _client_for("nobody")

    response = client.get("/api/v1/sessions")

    assert response.status_code == 403
    assert "role" in response.json()["message"]


def test_a_cached_session_lookup_still_keeps_other_recorders_out(api_client):
    client, _ = _client_for("recorder")
    session = SessionFactory(owner=UserFactory(username="theirs", roles=["recorder"]))
    assert api_client.get(f"/api/v1/sessions/{session.id}/chunks").status_code == 200

    for path in ("chunks", "chunks/0"):
        response = client.get(f"/api/v1/sessions/{session.id}/{path}")
        assert response.status_code == 404, response.content
