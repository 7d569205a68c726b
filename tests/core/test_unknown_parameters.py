"""Every list answers a query parameter it does not read with 400 `unknown_parameter`, and takes
every parameter it documents."""

import pytest

from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db

LISTS = {
    "sessions": "/api/v1/sessions",
    "chunks": "/api/v1/sessions/{session}/chunks",
    "timeline": "/api/v1/sessions/{session}/timeline",
    "audit": "/api/v1/audit",
}
PAGINATION = {"page_size": "2", "format": "json"}
DOCUMENTED = {
    "sessions": {
        "status": "recording",
        "owner": "operator",
        "host": "rdp.example.test",
        "remote_user": "alice",
        "client_address": "192.0.2.10",
        "created_after": "2020-01-01T00:00:00Z",
        "created_before": "2999-01-01T00:00:00Z",
        "complete": "false",
        "search": "session",
        "ordering": "-size",
    },
    "chunks": {"status": "stored"},
    "timeline": {},
    "audit": {
        "session": "00000000-0000-0000-0000-000000000000",
        "user": "operator",
        "action": "session_created",
        "after": "2020-01-01T00:00:00Z",
        "before": "2999-01-01T00:00:00Z",
    },
}


@pytest.mark.parametrize(
    ("listed", "parameter"),
    [("sessions", "user"), ("chunks", "sequence"), ("timeline", "from"), ("audit", "actor")],
)
def test_an_unknown_parameter_is_400_naming_the_known_ones(
    api_client, recording, listed, parameter
):
    url = LISTS[listed].format(session=recording.id)

    response = api_client.get(url, {parameter: "alice"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_parameter"
    assert list(body["fields"]) == [parameter]
    for known in [*DOCUMENTED[listed], *PAGINATION, "cursor"]:
        assert known in body["message"]


def test_the_message_names_every_unknown_parameter(api_client):
    response = api_client.get(
        "/api/v1/sessions", {"user": "alice", "limit": "5", "status": "stopped"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_parameter"
    assert "Unknown query parameters: limit, user." in response.json()["message"]
    assert sorted(response.json()["fields"]) == ["limit", "user"]


@pytest.mark.parametrize("listed", LISTS)
def test_every_documented_parameter_is_taken(api_client, recording, listed):
    url = LISTS[listed].format(session=recording.id)

    response = api_client.get(url, {**DOCUMENTED[listed], **PAGINATION})

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("listed", LISTS)
def test_a_next_link_with_its_cursor_is_taken(api_client, user, listed):
    session = SessionFactory(owner=user, status="recording")
    SessionFactory(owner=user)
    SessionFactory(owner=user)
    for sequence, time_ms in enumerate([0, 1000, 2000]):
        api_client.put(
            f"/api/v1/sessions/{session.id}/chunks/{sequence}",
            b"x" * 10,
            content_type="application/octet-stream",
            headers={"Lucid-Time-Ms": str(time_ms)},
        )
    url = LISTS[listed].format(session=session.id)
    first = api_client.get(url, {"page_size": "1"}).json()

    response = api_client.get(first["next"])

    assert response.status_code == 200, response.content
