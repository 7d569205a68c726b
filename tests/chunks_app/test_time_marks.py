"""Time marks: `Lucid-Time-Ms` on appends and chunk uploads, `Lucid-Duration-Ms` at stop."""

from pathlib import Path

import pytest

from chunks_app.models import Chunk, TimeMark
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    files_of_session,
    random_bytes,
    wait_until_settled,
)
from tests.chunks_app.marked_uploads import (
    append_marked,
    marks_of,
    put_marked,
    session_json,
    stop,
    stream_offset,
)

pytestmark = pytest.mark.django_db(transaction=True)

MALFORMED = ["-1", "abc", "1.5", "", " ", "1e3", "0x10", "+5", str(2**63), "9" * 40]


def test_a_marked_append_marks_the_stream_offset_before_it(api_client, recording):
    append_marked(api_client, recording, random_bytes(1000), time_ms=0)
    append_marked(api_client, recording, random_bytes(CHUNK_SIZE), time_ms=40)
    append_marked(api_client, recording, random_bytes(10))
    response = append_marked(api_client, recording, random_bytes(5), time_ms=2000)

    assert response.status_code == 200
    assert marks_of(api_client, recording) == [
        (0, 0),
        (40, 1000),
        (2000, CHUNK_SIZE + 1010),
    ]


def test_a_marked_append_without_bytes_is_400_and_marks_nothing(api_client, recording):
    append_marked(api_client, recording, random_bytes(1000), time_ms=0)

    response = append_marked(api_client, recording, b"", time_ms=500)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_time_mark"
    assert append_marked(api_client, recording, random_bytes(10), time_ms=700).status_code == 200
    assert marks_of(api_client, recording) == [(0, 0), (700, 1000)]


def test_a_mark_on_a_chunk_border_lies_at_that_chunks_first_byte(api_client, recording):
    append_marked(api_client, recording, random_bytes(CHUNK_SIZE), time_ms=0)
    append_marked(api_client, recording, random_bytes(CHUNK_SIZE * 2), time_ms=1000)
    append_marked(api_client, recording, random_bytes(1), time_ms=3000)

    assert marks_of(api_client, recording) == [(0, 0), (1000, CHUNK_SIZE), (3000, 3 * CHUNK_SIZE)]


def test_a_marked_chunk_upload_marks_the_chunks_offset_in_the_recording(api_client, recording):
    put_marked(api_client, recording, 0, random_bytes(1000), time_ms=0)
    put_marked(api_client, recording, 1, random_bytes(2000), time_ms=500)
    put_marked(api_client, recording, 2, random_bytes(3000))
    response = put_marked(api_client, recording, 3, random_bytes(4000), time_ms=1500)

    assert response.status_code == 201
    assert marks_of(api_client, recording) == [(0, 0), (500, 1000), (1500, 6000)]


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_mark_on_an_append_is_400_and_appends_nothing(api_client, recording, value):
    append_marked(api_client, recording, b"before", time_ms=0)

    response = append_marked(api_client, recording, b"refused", time_ms=value)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_time_mark"
    assert stream_offset(api_client, recording) == len(b"before")
    assert marks_of(api_client, recording) == [(0, 0)]


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_mark_on_a_chunk_is_400_and_stores_no_chunk(api_client, recording, value):
    response = put_marked(api_client, recording, 0, b"refused", time_ms=value)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_time_mark"
    assert api_client.get(f"/api/v1/sessions/{recording.id}/chunks/0").status_code == 404
    assert not TimeMark.objects.filter(session=recording).exists()


@pytest.mark.parametrize("time_ms", [1000, 999])
def test_an_append_marked_no_later_than_the_last_mark_is_409_and_appends_nothing(
    api_client, recording, time_ms
):
    append_marked(api_client, recording, b"first", time_ms=1000)

    response = append_marked(api_client, recording, b"refused", time_ms=time_ms)

    assert response.status_code == 409
    assert response.json()["code"] == "time_mark_conflict"
    assert stream_offset(api_client, recording) == len(b"first")
    assert marks_of(api_client, recording) == [(1000, 0)]


def test_bytes_of_a_refused_append_are_not_in_the_recording(api_client, recording):
    append_marked(api_client, recording, b"kept ", time_ms=1000)
    append_marked(api_client, recording, b"refused ", time_ms=500)
    append_marked(api_client, recording, b"kept too", time_ms=2000)
    stop(api_client, recording)

    recording_bytes = body_of(api_client.get(f"/api/v1/sessions/{recording.id}/recording"))

    assert recording_bytes == b"kept kept too"
    assert marks_of(api_client, recording) == [(1000, 0), (2000, 5)]


def test_a_refused_append_that_would_complete_chunks_stores_none_of_them(api_client, recording):
    append_marked(api_client, recording, random_bytes(100), time_ms=1000)

    response = append_marked(api_client, recording, random_bytes(CHUNK_SIZE * 2), time_ms=10)

    assert response.status_code == 409
    assert not Chunk.objects.filter(session=recording).exists()
    assert stream_offset(api_client, recording) == 100


@pytest.mark.parametrize("time_ms", [1000, 999])
def test_a_chunk_marked_no_later_than_the_chunk_before_it_is_409_and_not_stored(
    api_client, recording, time_ms
):
    put_marked(api_client, recording, 0, random_bytes(100), time_ms=1000)

    response = put_marked(api_client, recording, 1, random_bytes(100), time_ms=time_ms)

    assert response.status_code == 409
    assert response.json()["code"] == "time_mark_conflict"
    assert api_client.get(f"/api/v1/sessions/{recording.id}/chunks/1").status_code == 404
    assert Chunk.objects.filter(session=recording).count() == 1
    assert marks_of(api_client, recording) == [(1000, 0)]


def test_a_refused_chunk_leaves_no_file_behind(api_client, recording):
    put_marked(api_client, recording, 0, random_bytes(100), time_ms=1000)
    (kept,) = wait_until_settled(recording)

    refused = put_marked(api_client, recording, 1, random_bytes(100), time_ms=10)
    malformed = put_marked(api_client, recording, 2, random_bytes(100), time_ms="x")

    assert (refused.status_code, malformed.status_code) == (409, 400)
    names = {Path(name).name for name in files_of_session(recording.id)}
    assert names <= {Path(kept.spool_key).name, Path(kept.storage_key).name}


def test_the_largest_mark_a_recorder_may_send_is_kept(api_client, recording):
    largest = 10**18 - 1

    response = append_marked(api_client, recording, b"a", time_ms=largest)

    assert response.status_code == 200
    assert marks_of(api_client, recording) == [(largest, 0)]
    assert session_json(api_client, recording)["duration_ms"] == largest


def test_a_retried_chunk_with_the_same_mark_is_200(api_client, recording):
    body = random_bytes(100)
    put_marked(api_client, recording, 0, body, time_ms=1000)

    response = put_marked(api_client, recording, 0, body, time_ms=1000)

    assert response.status_code == 200
    assert marks_of(api_client, recording) == [(1000, 0)]


def test_a_retried_chunk_with_another_time_is_409_and_keeps_the_first_mark(api_client, recording):
    body = random_bytes(100)
    put_marked(api_client, recording, 0, body, time_ms=1000)

    response = put_marked(api_client, recording, 0, body, time_ms=1001)

    assert response.status_code == 409
    assert response.json()["code"] == "time_mark_conflict"
    assert marks_of(api_client, recording) == [(1000, 0)]


def test_a_retried_chunk_without_its_mark_keeps_the_mark(api_client, recording):
    body = random_bytes(100)
    put_marked(api_client, recording, 0, body, time_ms=1000)

    response = put_marked(api_client, recording, 0, body)

    assert response.status_code == 200
    assert marks_of(api_client, recording) == [(1000, 0)]


def test_chunks_uploaded_out_of_order_with_consistent_marks_are_accepted(api_client, recording):
    bodies = [random_bytes(1000), random_bytes(2000), random_bytes(3000)]
    put_marked(api_client, recording, 0, bodies[0], time_ms=0)
    later = put_marked(api_client, recording, 2, bodies[2], time_ms=2000)

    earlier = put_marked(api_client, recording, 1, bodies[1], time_ms=1000)

    assert (later.status_code, earlier.status_code) == (201, 201)
    assert marks_of(api_client, recording) == [(0, 0), (1000, 1000), (2000, 3000)]


@pytest.mark.parametrize("time_ms", [0, 2000, 2500])
def test_a_chunk_uploaded_late_whose_time_contradicts_its_neighbours_is_409(
    api_client, recording, time_ms
):
    put_marked(api_client, recording, 0, random_bytes(1000), time_ms=0)
    put_marked(api_client, recording, 2, random_bytes(1000), time_ms=2000)

    response = put_marked(api_client, recording, 1, random_bytes(1000), time_ms=time_ms)

    assert response.status_code == 409
    assert response.json()["code"] == "time_mark_conflict"
    assert api_client.get(f"/api/v1/sessions/{recording.id}/chunks/1").status_code == 404
    assert marks_of(api_client, recording) == [(0, 0), (2000, None)]


def test_duration_follows_the_last_mark(api_client, recording):
    assert session_json(api_client, recording)["duration_ms"] is None
    append_marked(api_client, recording, b"a", time_ms=0)
    assert session_json(api_client, recording)["duration_ms"] == 0

    append_marked(api_client, recording, b"b", time_ms=1500)

    assert session_json(api_client, recording)["duration_ms"] == 1500


def test_duration_follows_the_latest_mark_whatever_order_chunks_came_in(api_client, recording):
    put_marked(api_client, recording, 3, b"d", time_ms=3000)
    put_marked(api_client, recording, 1, b"b", time_ms=1000)

    assert session_json(api_client, recording)["duration_ms"] == 3000


def test_stop_without_a_duration_keeps_the_last_marks_time(api_client, recording):
    append_marked(api_client, recording, b"a", time_ms=0)
    append_marked(api_client, recording, b"b", time_ms=1500)

    response = stop(api_client, recording)

    assert response.status_code == 200
    assert response.json()["duration_ms"] == 1500


def test_stop_of_an_unmarked_recording_leaves_the_duration_unknown(api_client, recording):
    append_marked(api_client, recording, b"a")

    response = stop(api_client, recording)

    assert response.json()["duration_ms"] is None


def test_stop_with_a_duration_sets_it(api_client, recording):
    append_marked(api_client, recording, b"a", time_ms=0)
    append_marked(api_client, recording, b"b", time_ms=1500)

    response = stop(api_client, recording, duration_ms=2040)

    assert response.status_code == 200
    assert response.json()["duration_ms"] == 2040
    assert session_json(api_client, recording)["duration_ms"] == 2040


def test_stop_with_a_duration_equal_to_the_last_mark_is_fine(api_client, recording):
    append_marked(api_client, recording, b"b", time_ms=1500)

    response = stop(api_client, recording, duration_ms=1500)

    assert response.status_code == 200
    assert response.json()["duration_ms"] == 1500


def test_stop_with_a_duration_and_no_marks_sets_it(api_client, recording):
    append_marked(api_client, recording, b"a")

    response = stop(api_client, recording, duration_ms=60000)

    assert response.json()["duration_ms"] == 60000


def test_stop_with_a_duration_before_the_last_mark_is_409_and_keeps_recording(
    api_client, recording
):
    append_marked(api_client, recording, b"b", time_ms=1500)

    response = stop(api_client, recording, duration_ms=1499)

    assert response.status_code == 409
    assert response.json()["code"] == "time_mark_conflict"
    session = session_json(api_client, recording)
    assert session["status"] == "recording"
    assert session["duration_ms"] == 1500


@pytest.mark.parametrize("value", MALFORMED)
def test_stop_with_a_malformed_duration_is_400_and_keeps_recording(api_client, recording, value):
    append_marked(api_client, recording, b"b", time_ms=1500)

    response = stop(api_client, recording, duration_ms=value)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_duration"
    assert session_json(api_client, recording)["status"] == "recording"


def test_marks_go_with_their_session(api_client, recording):
    append_marked(api_client, recording, b"a", time_ms=0)
    append_marked(api_client, recording, b"b", time_ms=1000)
    stop(api_client, recording)
    assert TimeMark.objects.filter(session_id=recording.id).count() == 2

    response = api_client.delete(f"/api/v1/sessions/{recording.id}")

    assert response.status_code == 204
    assert not TimeMark.objects.filter(session_id=recording.id).exists()
