"""Hostile input is answered with a 4xx in the JSON error shape, never a 5xx."""

import base64
import json

import pytest
from rest_framework.test import APIClient

from sessions_app.models import Session
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db


def _deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _cursor(position: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["message"]


@pytest.mark.parametrize("url", ["/api/v1/auth/token", "/api/v1/auth/token/refresh"])
@pytest.mark.parametrize("depth", [65, 999, 100_000])
def test_deeply_nested_json_is_a_parse_error(
    anonymous_client: APIClient, url: str, depth: int
) -> None:
    response = anonymous_client.generic(
        "POST", url, _deep_array(depth), content_type="application/json"
    )
    _assert_error(response, 400, "parse_error")


def test_json_nested_within_the_limit_is_parsed(api_client: APIClient) -> None:
    response = api_client.post(
        "/api/v1/sessions", {"name": "s", "metadata": _nested(60)}, format="json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("depth", [100, 1_000, 5_000])
def test_deeply_nested_metadata_is_refused(api_client: APIClient, depth: int) -> None:
    metadata = '{"a": ' * depth + "{}" + "}" * depth
    body = f'{{"name": "s", "metadata": {metadata}}}'
    response = api_client.generic("POST", "/api/v1/sessions", body, content_type="application/json")
    _assert_error(response, 400, "parse_error")
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    "position",
    [
        {"d": "n", "v": None, "k": None},
        {"d": "n", "v": "2026-01-01T00:00:00+00:00", "k": None},
        {"d": "n", "v": None, "k": "00000000-0000-0000-0000-000000000000"},
        {"d": "p", "v": True, "k": "00000000-0000-0000-0000-000000000000"},
        {"d": "n", "v": [1], "k": "00000000-0000-0000-0000-000000000000"},
        {"d": "n", "v": {"x": 1}, "k": {"x": 1}},
        {"d": "n", "v": "2026-01-01T00:00:00+00:00", "k": 7},
        {"d": "n", "v": "a\u0000b", "k": "00000000-0000-0000-0000-000000000000"},
        {"d": "n", "v": "2026-01-01T00:00:00+00:00", "k": "x\u0000"},
    ],
)
@pytest.mark.parametrize("listing", ["sessions", "chunks", "audit"])
def test_cursor_of_the_wrong_shape_is_invalid(
    api_client: APIClient, user, position: dict, listing: str
) -> None:
    session = SessionFactory(owner=user)
    url = {
        "sessions": "/api/v1/sessions",
        "chunks": f"/api/v1/sessions/{session.pk}/chunks",
        "audit": "/api/v1/audit",
    }[listing]
    response = api_client.get(url, {"cursor": _cursor(position)})
    _assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize("ordering", ["name", "size", "-created_at"])
@pytest.mark.parametrize("value", ["a\u0000b", 10**30, -(10**30), 1.5])
def test_cursor_values_the_database_cannot_hold_are_not_a_5xx(
    api_client: APIClient, user, ordering: str, value: object
) -> None:
    SessionFactory(owner=user)
    position = {"d": "n", "v": value, "k": "00000000-0000-0000-0000-000000000000"}
    response = api_client.get(
        "/api/v1/sessions", {"cursor": _cursor(position), "ordering": ordering}
    )
    assert response.status_code in (200, 400), response.content


def test_the_issued_cursor_still_works(api_client: APIClient, user) -> None:
    SessionFactory.create_batch(3, owner=user)
    first = api_client.get("/api/v1/sessions", {"page_size": 2}).json()
    second = api_client.get(first["next"])
    assert second.status_code == 200
    assert len(second.json()["results"]) == 1


@pytest.mark.parametrize(
    "metadata",
    [
        {"k": "a\u0000b"},
        {"a\u0000": "v"},
        {"outer": {"inner": ["x", {"deep\u0000": 1}]}},
        {"list": [["\u0000"]]},
    ],
)
def test_nul_in_metadata_is_refused(api_client: APIClient, metadata: dict) -> None:
    response = api_client.post("/api/v1/sessions", {"name": "s", "metadata": metadata})
    _assert_error(response, 400, "validation_error")
    assert "metadata" in response.json()["fields"]
    assert not Session.objects.exists()


def test_nul_in_metadata_is_refused_on_update(api_client: APIClient, user) -> None:
    session = SessionFactory(owner=user, metadata={"k": "v"})
    response = api_client.patch(f"/api/v1/sessions/{session.pk}", {"metadata": {"k": "\u0000"}})
    _assert_error(response, 400, "validation_error")
    session.refresh_from_db()
    assert session.metadata == {"k": "v"}


@pytest.mark.parametrize("days", [36_501, 2_147_483_648, 10**20])
def test_retention_days_out_of_range_is_refused(api_client: APIClient, days: int) -> None:
    response = api_client.post("/api/v1/sessions", {"name": "s", "retention_days": days})
    _assert_error(response, 400, "validation_error")
    assert "retention_days" in response.json()["fields"]
    assert not Session.objects.exists()


def test_retention_days_at_the_limit_is_kept(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/sessions", {"name": "s", "retention_days": 36_500})
    assert response.status_code == 201, response.content
    assert response.json()["retention_days"] == 36_500


def test_retention_days_out_of_range_is_refused_on_update(api_client: APIClient, user) -> None:
    session = SessionFactory(owner=user)
    response = api_client.patch(f"/api/v1/sessions/{session.pk}", {"retention_days": 10**20})
    _assert_error(response, 400, "validation_error")


@pytest.mark.parametrize("size", [0, -1, 10**20])
def test_chunk_size_out_of_range_is_refused(api_client: APIClient, size: int) -> None:
    response = api_client.post("/api/v1/sessions", {"name": "s", "chunk_size": size})
    _assert_error(response, 400, "validation_error")
    assert "chunk_size" in response.json()["fields"]
    assert not Session.objects.exists()


@pytest.mark.parametrize("level", [10**20, -(10**20)])
def test_compression_level_out_of_range_is_refused(api_client: APIClient, level: int) -> None:
    response = api_client.post("/api/v1/sessions", {"name": "s", "compression_level": level})
    _assert_error(response, 400, "validation_error")
    assert not Session.objects.exists()
