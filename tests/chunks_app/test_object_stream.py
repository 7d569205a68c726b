"""Streams in an object-store spool: immutable part objects chained by the session row, no locks.

Every test here keeps the spool and the chunk store in a `weed mini` bucket (under a prefix of
its own) and nothing on the local disk.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from chunks_app.models import Chunk
from chunks_app.spool import session_stream
from chunks_app.storage.s3 import S3ChunkStore
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    download,
    post_stream,
    random_bytes,
    wait_until_settled,
)
from tests.support.object_storage import object_storage_use

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def object_spool(settings, s3_service) -> S3ChunkStore:
    return object_storage_use(settings, s3_service, quota_bytes=2**34)


def stop(client, session: Session) -> None:
    assert client.post(f"/api/v1/sessions/{session.id}/stop").status_code == 200


def recording_of(client, session: Session) -> bytes:
    return body_of(client.get(f"/api/v1/sessions/{session.id}/recording"))


def test_appends_of_any_size_come_back_whole_and_nothing_touches_the_local_disk(
    api_client, recording, settings
):
    data = random_bytes(CHUNK_SIZE * 3 + 12_345)
    cuts = [0, 10, 70_000, CHUNK_SIZE * 2 + 5, CHUNK_SIZE * 2 + 6, len(data)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        assert post_stream(api_client, recording, data[start:end]).status_code == 200

    stop(api_client, recording)

    chunks = wait_until_settled(recording)
    assert [chunk.size for chunk in chunks] == [CHUNK_SIZE] * 3 + [12_345]
    assert recording_of(api_client, recording) == data
    assert body_of(download(api_client, recording, 3)) == data[CHUNK_SIZE * 3 :]
    assert not (settings.LUCID_STORAGE_PATH / "spool").exists()


def test_the_open_segment_is_parts_named_by_offset_and_the_row_names_the_last(
    api_client, recording, object_spool
):
    for piece in (b"a" * 100, b"b" * 50, b"c" * 7):
        post_stream(api_client, recording, piece)

    recording.refresh_from_db()
    names = sorted(key.rsplit("/", 1)[1] for key in object_spool.keys(f"{recording.id}/"))
    assert [name.split("-")[0] for name in names] == [f"{start:012d}" for start in (0, 100, 150)]
    assert names[-1].startswith(f"{150:012d}-{recording.stream_part}-")
    stream = session_stream(session_id=recording.id, chunk_size=CHUNK_SIZE)
    part = recording.stream_part
    assert stream.read(sequence=0, size=157, part=part) == b"a" * 100 + b"b" * 50 + b"c" * 7


def test_parts_of_an_append_that_was_never_acknowledged_are_not_in_the_recording(
    api_client, recording
):
    acknowledged = random_bytes(1000)
    post_stream(api_client, recording, acknowledged)
    recording.refresh_from_db()
    stream = session_stream(session_id=recording.id, chunk_size=CHUNK_SIZE)
    stream.append(offset=1000, part=recording.stream_part, pieces=[b"never acknowledged" * 5000])

    post_stream(api_client, recording, b"after")
    stop(api_client, recording)

    wait_until_settled(recording)
    assert recording_of(api_client, recording) == acknowledged + b"after"


def test_of_two_writers_at_one_offset_one_is_recorded_and_the_other_told_to_send_again(
    api_client, recording
):
    post_stream(api_client, recording, b"start")
    recording.refresh_from_db()
    stream = session_stream(session_id=recording.id, chunk_size=CHUNK_SIZE)
    # The second writer read the row before the first one's append was recorded.
    stale_offset, stale_part = recording.stream_offset, recording.stream_part
    assert post_stream(api_client, recording, b"first").status_code == 200
    stream.append(offset=stale_offset, part=stale_part, pieces=[b"second"])

    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda body: post_stream(api_client, recording, body), [b"x" * 70, b"y" * 70])
        )

    assert sorted(answer.status_code for answer in answers) in ([200, 200], [200, 409])
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "stream_conflict"
    recording.refresh_from_db()
    recorded = sum(len(b"x" * 70) for answer in answers if answer.status_code == 200)
    assert recording.stream_offset == len(b"startfirst") + recorded
    stop(api_client, recording)
    wait_until_settled(recording)
    content = recording_of(api_client, recording)
    assert content.startswith(b"startfirst")
    assert len(content) == recording.stream_offset
    assert set(content[10:]) <= {ord("x"), ord("y")}


def test_an_append_whose_part_was_lost_is_refused_with_a_storage_error_not_wrong_bytes(
    api_client, recording, object_spool
):
    post_stream(api_client, recording, b"a" * 100)
    post_stream(api_client, recording, b"b" * 100)
    (first,) = [key for key in object_spool.keys(f"{recording.id}/") if "/000000000000-" in key]
    object_spool.delete(first)

    answer = post_stream(api_client, recording, random_bytes(CHUNK_SIZE))

    assert answer.status_code == 503
    recording.refresh_from_db()
    assert recording.stream_offset == 200
    assert not Chunk.objects.filter(session=recording).exists()


def test_the_parts_a_segment_was_put_together_from_go_once_it_is_recorded(
    api_client, recording, object_spool
):
    pieces = [b"a" * 100, b"b" * (CHUNK_SIZE - 100) + b"c" * 10, b"d" * 5]
    for piece in pieces:
        post_stream(api_client, recording, piece)

    keys = list(object_spool.keys(f"{recording.id}/"))
    assert not [key for key in keys if f"/stream-{0:012d}/" in key]
    assert len([key for key in keys if f"/stream-{1:012d}/" in key]) == 2
    stop(api_client, recording)
    wait_until_settled(recording)
    assert list(object_spool.keys(f"{recording.id}/")) == []
    assert recording_of(api_client, recording) == b"".join(pieces)
