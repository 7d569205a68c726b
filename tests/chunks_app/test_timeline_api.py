"""GET /api/v1/sessions/{id}/timeline: the marks page by page, the mark at a time, who may read."""

import pytest
from rest_framework.test import APIClient

from tests.chunks_app.helpers import CHUNK_SIZE
from tests.chunks_app.marked_uploads import append_marked, put_marked, stop, timeline
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# (time_ms, bytes appended from that time on): five marks at offsets 0, 100, 300, 600, 1000.
APPENDS = [(0, 100), (1000, 200), (2000, 300), (3500, 400), (4000, 500)]


@pytest.fixture
def marked(api_client, recording):
    """The recording with five marks, appended in time order."""
    for time_ms, size in APPENDS:
        append_marked(api_client, recording, b"m" * size, time_ms=time_ms)
    return recording


def as_pairs(marks: list[dict]) -> list[tuple[int, int | None]]:
    return [(mark["time_ms"], mark["offset"]) for mark in marks]


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_timeline_shows_duration_and_every_mark_with_its_offset(api_client, marked):
    body = timeline(api_client, marked)

    assert body == {
        "duration_ms": 4000,
        "marks": [
            {"time_ms": 0, "offset": 0},
            {"time_ms": 1000, "offset": 100},
            {"time_ms": 2000, "offset": 300},
            {"time_ms": 3500, "offset": 600},
            {"time_ms": 4000, "offset": 1000},
        ],
        "next": None,
        "previous": None,
    }


def test_timeline_of_an_unmarked_session_is_empty(api_client, recording):
    assert timeline(api_client, recording) == {
        "duration_ms": None,
        "marks": [],
        "next": None,
        "previous": None,
    }


def test_timeline_after_stop_shows_the_given_duration(api_client, marked):
    stop(api_client, marked, duration_ms=4700)

    assert timeline(api_client, marked)["duration_ms"] == 4700


def test_timeline_pages_follow_next_to_every_mark_in_time_order(api_client, marked):
    pages = [timeline(api_client, marked, page_size=2)]
    while pages[-1]["next"]:
        response = api_client.get(pages[-1]["next"])
        assert response.status_code == 200
        pages.append(response.json())

    assert [len(page["marks"]) for page in pages] == [2, 2, 1]
    assert [pair for page in pages for pair in as_pairs(page["marks"])] == [
        (0, 0),
        (1000, 100),
        (2000, 300),
        (3500, 600),
        (4000, 1000),
    ]
    assert all(page["duration_ms"] == 4000 for page in pages)
    assert pages[0]["previous"] is None
    assert pages[-1]["previous"] is not None


def test_timeline_previous_leads_back_to_the_page_before(api_client, marked):
    first = timeline(api_client, marked, page_size=2)
    second = api_client.get(first["next"]).json()

    back = api_client.get(second["previous"]).json()

    assert as_pairs(back["marks"]) == as_pairs(first["marks"])


@pytest.mark.parametrize(
    ("at_ms", "expected"),
    [
        (0, (0, 0)),
        (1000, (1000, 100)),
        (1999, (1000, 100)),
        (3499, (2000, 300)),
        (4000, (4000, 1000)),
        (10**9, (4000, 1000)),
    ],
)
def test_at_ms_gives_the_mark_at_or_before_that_time(api_client, marked, at_ms, expected):
    body = timeline(api_client, marked, at_ms=at_ms)

    assert as_pairs(body["marks"]) == [expected]
    assert (body["time_ms"], body["offset"]) == expected
    assert body["duration_ms"] == 4000


def test_at_ms_before_the_first_mark_is_404(api_client, recording):
    append_marked(api_client, recording, b"init")
    append_marked(api_client, recording, b"fragment", time_ms=500)

    response = api_client.get(f"/api/v1/sessions/{recording.id}/timeline", {"at_ms": 499})

    assert response.status_code == 404
    assert response.json()["code"] == "time_mark_not_found"


def test_at_ms_on_an_unmarked_session_is_404(api_client, recording):
    response = api_client.get(f"/api/v1/sessions/{recording.id}/timeline", {"at_ms": 0})

    assert response.status_code == 404
    assert response.json()["code"] == "time_mark_not_found"


@pytest.mark.parametrize("at_ms", ["abc", "-1", "1.5", "", "1e3", "9" * 40])
def test_a_malformed_at_ms_is_400(api_client, marked, at_ms):
    response = api_client.get(f"/api/v1/sessions/{marked.id}/timeline", {"at_ms": at_ms})

    assert response.status_code == 400
    assert "at_ms" in response.json()["fields"]


def test_marks_of_chunks_after_a_missing_one_have_no_offset_until_it_arrives(api_client, recording):
    put_marked(api_client, recording, 0, b"a" * 1000, time_ms=0)
    put_marked(api_client, recording, 2, b"c" * 3000, time_ms=2000)
    put_marked(api_client, recording, 3, b"d" * 4000, time_ms=3000)

    before = as_pairs(timeline(api_client, recording)["marks"])
    at_2500 = timeline(api_client, recording, at_ms=2500)
    put_marked(api_client, recording, 1, b"b" * 2000, time_ms=1000)
    after = as_pairs(timeline(api_client, recording)["marks"])

    assert before == [(0, 0), (2000, None), (3000, None)]
    assert (at_2500["time_ms"], at_2500["offset"]) == (2000, None)
    assert after == [(0, 0), (1000, 1000), (2000, 3000), (3000, 6000)]


def test_marks_after_an_unmarked_missing_chunk_have_no_offset_until_it_arrives(
    api_client, recording
):
    put_marked(api_client, recording, 1, b"b" * 2000, time_ms=1000)

    before = as_pairs(timeline(api_client, recording)["marks"])
    put_marked(api_client, recording, 0, b"a" * 1000)
    after = as_pairs(timeline(api_client, recording)["marks"])

    assert before == [(1000, None)]
    assert after == [(1000, 1000)]


def test_stop_places_marks_after_a_chunk_that_never_came(api_client, recording):
    put_marked(api_client, recording, 0, b"a" * 1000, time_ms=0)
    put_marked(api_client, recording, 2, b"c" * 3000, time_ms=2000)

    stop(api_client, recording)

    assert as_pairs(timeline(api_client, recording)["marks"]) == [(0, 0), (2000, 1000)]


def test_stream_marks_past_the_first_chunk_have_their_offsets_while_recording(
    api_client, recording
):
    append_marked(api_client, recording, b"x" * (CHUNK_SIZE + 10), time_ms=0)
    append_marked(api_client, recording, b"y" * 10, time_ms=100)

    assert as_pairs(timeline(api_client, recording)["marks"]) == [(0, 0), (100, CHUNK_SIZE + 10)]


def test_a_recorder_reads_the_timeline_of_its_own_session():
    recorder = UserFactory(username="recorder", roles=["recorder"])
    session = SessionFactory(owner=recorder, status="recording", chunk_size=CHUNK_SIZE)
    client = client_of(recorder)
    append_marked(client, session, b"x", time_ms=0)

    response = client.get(f"/api/v1/sessions/{session.id}/timeline")

    assert response.status_code == 200
    assert as_pairs(response.json()["marks"]) == [(0, 0)]


def test_a_recorder_cannot_see_the_timeline_of_anothers_session(api_client, marked):
    client = client_of(UserFactory(username="recorder", roles=["recorder"]))

    listed = client.get(f"/api/v1/sessions/{marked.id}/timeline")
    at = client.get(f"/api/v1/sessions/{marked.id}/timeline", {"at_ms": 0})

    assert listed.status_code == 404
    assert listed.json()["code"] == "not_found"
    assert at.status_code == 404
    assert at.json()["code"] == "not_found"


def test_an_auditor_reads_any_timeline(api_client, marked):
    client = client_of(UserFactory(username="auditor", roles=["auditor"]))

    response = client.get(f"/api/v1/sessions/{marked.id}/timeline")

    assert response.status_code == 200
    assert len(response.json()["marks"]) == 5


def test_timeline_without_credentials_is_401(anonymous_client, marked):
    response = anonymous_client.get(f"/api/v1/sessions/{marked.id}/timeline")

    assert response.status_code == 401


def test_timeline_of_an_unknown_session_is_404(api_client):
    response = api_client.get("/api/v1/sessions/00000000-0000-0000-0000-000000000000/timeline")

    assert response.status_code == 404
