"""Listing sessions: order, filters, search, ordering and keyset pagination."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["name"] for item in response.json()["results"]]


def _walk(client, url: str, *, between_pages=None) -> list[str]:
    seen: list[str] = []
    while url:
        body = client.get(url).json()
        seen += [item["id"] for item in body["results"]]
        url = body["next"]
        if between_pages:
            between_pages()
    return seen


def test_list_is_newest_first(api_client, user):
    now = timezone.now()
    for age, name in [(3, "old"), (1, "new"), (2, "mid")]:
        SessionFactory(owner=user, name=name, created_at=now - timedelta(hours=age))

    assert _names(api_client.get("/api/v1/sessions")) == ["new", "mid", "old"]


def test_list_has_the_paginated_shape(api_client, user):
    SessionFactory(owner=user)

    body = api_client.get("/api/v1/sessions").json()

    assert set(body) == {"next", "previous", "results"}
    assert body["next"] is None and body["previous"] is None


def test_filter_by_status(api_client, user):
    SessionFactory(owner=user, name="a", status="recording")
    SessionFactory(owner=user, name="b", status="stopped")

    assert _names(api_client.get("/api/v1/sessions?status=recording")) == ["a"]


def test_filter_by_unknown_status_is_400(api_client):
    response = api_client.get("/api/v1/sessions?status=flying")

    assert response.status_code == 400
    assert "status" in response.json()["fields"]


def test_filter_by_owner_username(api_client, user):
    SessionFactory(owner=user, name="mine")
    SessionFactory(owner=UserFactory(username="bob"), name="bobs")

    assert _names(api_client.get("/api/v1/sessions?owner=bob")) == ["bobs"]


def test_filter_by_host(api_client, user):
    SessionFactory(owner=user, name="a", host="dc01")
    SessionFactory(owner=user, name="b", host="dc02")

    assert _names(api_client.get("/api/v1/sessions?host=dc02")) == ["b"]


def test_filter_by_creation_time(api_client, user):
    now = timezone.now()
    SessionFactory(owner=user, name="old", created_at=now - timedelta(days=10))
    SessionFactory(owner=user, name="mid", created_at=now - timedelta(days=5))
    SessionFactory(owner=user, name="new", created_at=now)
    after = (now - timedelta(days=7)).isoformat()
    before = (now - timedelta(days=1)).isoformat()

    response = api_client.get(
        "/api/v1/sessions", {"created_after": after, "created_before": before}
    )

    assert _names(response) == ["mid"]


def test_filter_by_malformed_time_is_400(api_client):
    response = api_client.get("/api/v1/sessions?created_after=yesterday")

    assert response.status_code == 400
    assert "created_after" in response.json()["fields"]


def test_filter_by_complete(api_client, user):
    SessionFactory(owner=user, name="whole", status="stopped")
    SessionFactory(owner=user, name="gaps", status="stopped", complete=False)
    SessionFactory(owner=user, name="live", status="recording")

    assert _names(api_client.get("/api/v1/sessions?complete=true")) == ["whole"]
    assert sorted(_names(api_client.get("/api/v1/sessions?complete=false"))) == ["gaps", "live"]


def test_search_matches_name_and_host(api_client, user):
    SessionFactory(owner=user, name="finance review", host="fs01")
    SessionFactory(owner=user, name="other", host="finance-dc")
    SessionFactory(owner=user, name="unrelated", host="x")

    assert sorted(_names(api_client.get("/api/v1/sessions?search=finance"))) == [
        "finance review",
        "other",
    ]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("name", ["a", "b", "c"]),
        ("-name", ["c", "b", "a"]),
        ("size", ["b", "c", "a"]),
        ("-size", ["a", "c", "b"]),
        ("created_at", ["c", "a", "b"]),
        ("-created_at", ["b", "a", "c"]),
    ],
)
def test_ordering(api_client, user, ordering, expected):
    now = timezone.now()
    SessionFactory(owner=user, name="a", size=300, created_at=now - timedelta(hours=2))
    SessionFactory(owner=user, name="b", size=100, created_at=now - timedelta(hours=1))
    SessionFactory(owner=user, name="c", size=200, created_at=now - timedelta(hours=3))

    assert _names(api_client.get(f"/api/v1/sessions?ordering={ordering}")) == expected


def test_page_size_limits_the_page(api_client, user):
    SessionFactory.create_batch(5, owner=user)

    body = api_client.get("/api/v1/sessions?page_size=2").json()

    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_page_size_is_capped(api_client, user, settings):
    settings.LUCID_MAX_PAGE_SIZE = 3
    SessionFactory.create_batch(5, owner=user)

    assert len(api_client.get("/api/v1/sessions?page_size=1000").json()["results"]) == 3


@pytest.mark.parametrize("page_size", ["0", "-1", "ten"])
def test_invalid_page_size_is_400(api_client, page_size):
    response = api_client.get(f"/api/v1/sessions?page_size={page_size}")

    assert response.status_code == 400
    assert "page_size" in response.json()["fields"]


@pytest.mark.parametrize("cursor", ["garbage", "e30=", "eyJkIjoibiIsInYiOiJ4In0="])
def test_invalid_cursor_is_400(api_client, cursor):
    response = api_client.get(f"/api/v1/sessions?cursor={cursor}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("ordering", ["-created_at", "name", "-size"])
def test_following_next_visits_every_session_once(api_client, user, ordering):
    sessions = SessionFactory.create_batch(11, owner=user)

    seen = _walk(api_client, f"/api/v1/sessions?page_size=3&ordering={ordering}")

    assert sorted(seen) == sorted(str(s.id) for s in sessions)


@pytest.mark.parametrize("ordering", ["-created_at", "created_at", "name", "-size"])
def test_following_next_while_sessions_are_added_visits_each_existing_one_once(
    api_client, user, ordering
):
    existing = SessionFactory.create_batch(10, owner=user)

    seen = _walk(
        api_client,
        f"/api/v1/sessions?page_size=3&ordering={ordering}",
        between_pages=lambda: SessionFactory.create_batch(2, owner=user),
    )

    assert len(seen) == len(set(seen))
    assert {str(s.id) for s in existing} <= set(seen)


def test_previous_link_returns_the_page_before(api_client, user):
    SessionFactory.create_batch(7, owner=user)
    first = api_client.get("/api/v1/sessions?page_size=3").json()
    second = api_client.get(first["next"]).json()

    back = api_client.get(second["previous"]).json()

    assert [s["id"] for s in back["results"]] == [s["id"] for s in first["results"]]
    assert back["previous"] is None
    assert back["next"] is not None
