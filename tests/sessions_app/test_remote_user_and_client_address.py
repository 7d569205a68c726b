"""A session's `remote_user` and `client_address`: written, validated, filtered and searched."""

import pytest

from sessions_app.models import Session
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(item["name"] for item in response.json()["results"])


def test_create_takes_the_remote_user_and_client_address(api_client):
    response = api_client.post(
        "/api/v1/sessions",
        {"name": "x", "remote_user": "CORP\\alice", "client_address": "192.0.2.10"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["remote_user"], body["client_address"]) == ("CORP\\alice", "192.0.2.10")
    stored = Session.objects.get(pk=body["id"])
    assert (stored.remote_user, stored.client_address) == ("CORP\\alice", "192.0.2.10")


def test_a_session_created_without_them_has_no_remote_user_and_a_null_address(api_client):
    body = api_client.post("/api/v1/sessions", {"name": "x"}, format="json").json()

    assert body["remote_user"] == ""
    assert body["client_address"] is None


def test_an_ipv6_client_address_is_kept_in_its_canonical_form(api_client):
    response = api_client.post(
        "/api/v1/sessions", {"name": "x", "client_address": "2001:DB8:0:0::0:1"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["client_address"] == "2001:db8::1"
    assert api_client.get(f"/api/v1/sessions/{response.json()['id']}").json()["client_address"] == (
        "2001:db8::1"
    )


def test_an_ipv6_zone_index_is_dropped(api_client):
    response = api_client.post(
        "/api/v1/sessions", {"name": "x", "client_address": "fe80::1%eth0"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["client_address"] == "fe80::1"


def test_an_empty_client_address_is_no_address(api_client):
    response = api_client.post(
        "/api/v1/sessions", {"name": "x", "client_address": ""}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["client_address"] is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"client_address": "rdp-client.corp.test"}, "client_address"),
        ({"client_address": "192.0.2.256"}, "client_address"),
        ({"client_address": "192.0.2.10:3389"}, "client_address"),
        ({"client_address": "010.0.0.1"}, "client_address"),
        ({"client_address": 3232235777}, "client_address"),
        ({"remote_user": "x" * 256}, "remote_user"),
        ({"remote_user": "al\x00ice"}, "remote_user"),
        ({"remote_user": ["alice"]}, "remote_user"),
    ],
)
def test_create_rejects_a_bad_remote_user_or_client_address_naming_it(api_client, payload, field):
    response = api_client.post("/api/v1/sessions", {"name": "x", **payload}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [field]
    assert not Session.objects.exists()


def test_patch_changes_them_while_recording(api_client, user):
    session = SessionFactory(owner=user, status="recording", remote_user="alice")

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}",
        {"remote_user": "bob", "client_address": "198.51.100.7"},
        format="json",
    )

    assert response.status_code == 200
    assert (response.json()["remote_user"], response.json()["client_address"]) == (
        "bob",
        "198.51.100.7",
    )
    session.refresh_from_db()
    assert (session.remote_user, session.client_address) == ("bob", "198.51.100.7")


def test_patch_with_a_bad_client_address_is_400_and_keeps_the_old_one(api_client, user):
    session = SessionFactory(owner=user, client_address="192.0.2.10")

    response = api_client.patch(
        f"/api/v1/sessions/{session.id}", {"client_address": "nowhere"}, format="json"
    )

    assert response.status_code == 400
    assert "client_address" in response.json()["fields"]
    session.refresh_from_db()
    assert session.client_address == "192.0.2.10"


def test_filter_by_remote_user(api_client, user):
    SessionFactory(owner=user, name="alices", remote_user="alice")
    SessionFactory(owner=user, name="bobs", remote_user="bob")

    assert _names(api_client.get("/api/v1/sessions", {"remote_user": "alice"})) == ["alices"]


def test_filter_by_client_address(api_client, user):
    SessionFactory(owner=user, name="near", client_address="192.0.2.10")
    SessionFactory(owner=user, name="far", client_address="198.51.100.7")
    SessionFactory(owner=user, name="unknown")

    assert _names(api_client.get("/api/v1/sessions", {"client_address": "192.0.2.10"})) == ["near"]


def test_filter_by_an_ipv6_client_address_in_another_spelling(api_client, user):
    SessionFactory(owner=user, name="v6", client_address="2001:db8::1")
    SessionFactory(owner=user, name="v4", client_address="192.0.2.10")

    response = api_client.get("/api/v1/sessions", {"client_address": "2001:0DB8:0::1"})

    assert _names(response) == ["v6"]


def test_filter_by_a_malformed_client_address_is_400(api_client, user):
    response = api_client.get("/api/v1/sessions", {"client_address": "somewhere"})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "client_address" in response.json()["fields"]


def test_search_matches_the_remote_user(api_client, user):
    SessionFactory(owner=user, name="alice's", remote_user="CORP\\alice.smith")
    SessionFactory(owner=user, name="bob's", remote_user="CORP\\bob")

    assert _names(api_client.get("/api/v1/sessions", {"search": "alice"})) == ["alice's"]


def test_search_matches_part_of_the_client_address(api_client, user):
    SessionFactory(owner=user, name="lan", client_address="10.20.30.40")
    SessionFactory(owner=user, name="wan", client_address="198.51.100.7")
    SessionFactory(owner=user, name="unknown")

    assert _names(api_client.get("/api/v1/sessions", {"search": "10.20."})) == ["lan"]
