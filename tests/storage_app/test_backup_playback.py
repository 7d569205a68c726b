"""Backup and restore keep what playback needs: content type, duration, time marks, offsets."""

import hashlib
import json
from pathlib import Path

import pytest
from django.core.management import CommandError

from chunks_app.models import Chunk, TimeMark
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    KIB,
    body_of,
    damage_stored,
    put_chunk,
    random_bytes,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.storage_app.test_backup import archive_members, archive_write, backup, restore, wipe

pytestmark = pytest.mark.django_db(transaction=True)
CHUNK_SIZE = 64 * KIB
STREAM_APPENDS = [random_bytes(50_000) for _ in range(4)] + [random_bytes(50_123)]
UPLOADS = [random_bytes(size) for size in (40_000, 52_000, 61_000, 30_000)]
RANGES = ["bytes=0-99", "bytes=60000-140000", "bytes=150000-", "bytes=-5000"]


def mp4_session(owner) -> Session:
    return SessionFactory(
        owner=owner, status="recording", chunk_size=CHUNK_SIZE, content_type="video/mp4"
    )


def append(client, session: Session, body: bytes, *, time_ms: int):
    return client.generic(
        "POST",
        f"/api/v1/sessions/{session.id}/stream",
        body,
        content_type="application/octet-stream",
        HTTP_LUCID_TIME_MS=str(time_ms),
    )


def stop(client, session: Session, *, duration_ms: int) -> None:
    response = client.post(
        f"/api/v1/sessions/{session.id}/stop", HTTP_LUCID_DURATION_MS=str(duration_ms)
    )
    assert response.status_code == 200
    wait_until_settled(session)


def record_streamed(client, owner) -> tuple[Session, list[bytes]]:
    """A stopped video/mp4 stream with a mark per append, most of them inside a chunk; returns
    the session and its marked pieces."""
    session = mp4_session(owner)
    for index, body in enumerate(STREAM_APPENDS):
        assert append(client, session, body, time_ms=index * 1000).status_code == 200
    stop(client, session, duration_ms=5000)
    return session, STREAM_APPENDS


def upload(client, session: Session, sequence: int) -> None:
    response = put_chunk(
        client, session, sequence, UPLOADS[sequence], lucid_time_ms=str(sequence * 1500)
    )
    assert response.status_code == 201


def record_uploaded(client, owner) -> tuple[Session, list[bytes]]:
    """A stopped video/mp4 session of uploaded chunks of several sizes, each one marked;
    returns the session and its chunks."""
    session = mp4_session(owner)
    for sequence in range(len(UPLOADS)):
        upload(client, session, sequence)
    stop(client, session, duration_ms=6000)
    return session, UPLOADS


def timeline(client, session: Session) -> dict:
    """The session's timeline, every page of it."""
    url = f"/api/v1/sessions/{session.id}/timeline?page_size=2"
    marks, duration_ms = [], None
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = response.json()
        marks += page["marks"]
        duration_ms, url = page["duration_ms"], page["next"]
    return {"duration_ms": duration_ms, "marks": marks}


def seen_by_player(client, session: Session) -> dict:
    """What a player reads of a session: its fields, timeline and byte ranges of its recording."""
    recording = f"/api/v1/sessions/{session.id}/recording"
    ranges = {}
    for header in RANGES:
        response = client.get(recording, HTTP_RANGE=header)
        assert response.status_code == 206
        ranges[header] = (response["Content-Range"], response["ETag"], body_of(response))
    whole = client.get(recording)
    return {
        "detail": client.get(f"/api/v1/sessions/{session.id}").json(),
        "timeline": timeline(client, session),
        "ranges": ranges,
        "recording": (whole["Content-Type"], body_of(whole)),
    }


def offsets(session: Session) -> list[int | None]:
    chunks = Chunk.objects.filter(session_id=session.id).order_by("sequence")
    return list(chunks.values_list("offset", flat=True))


@pytest.fixture
def archive_path(tmp_path) -> Path:
    return tmp_path / "backups" / "playback.tar.zst"


@pytest.mark.parametrize("record", [record_streamed, record_uploaded])
def test_a_restored_session_plays_back_the_same(api_client, user, archive_path, record):
    session, pieces = record(api_client, user)
    data = b"".join(pieces)
    before = seen_by_player(api_client, session)

    backup(archive_path)
    wipe(api_client, [session])
    assert not TimeMark.objects.filter(session_id=session.id).exists()
    restore(archive_path)

    after = seen_by_player(api_client, session)
    assert after == before
    assert after["detail"]["content_type"] == "video/mp4"
    assert after["timeline"]["duration_ms"] == after["detail"]["duration_ms"] > 0
    piece_starts = [sum(map(len, pieces[:index])) for index in range(len(pieces))]
    assert [mark["offset"] for mark in after["timeline"]["marks"]] == piece_starts
    assert after["ranges"]["bytes=60000-140000"][2] == data[60000:140001]
    assert after["recording"] == ("video/mp4", data)
    assert None not in offsets(session)
    assert "1 already present and unchanged; nothing to do" in restore(archive_path)


def test_the_marks_of_a_stream_keep_their_places_inside_chunks(api_client, user, archive_path):
    session, _ = record_streamed(api_client, user)
    backup(archive_path)
    wipe(api_client, [session])

    restore(archive_path)

    assert timeline(api_client, session)["marks"] == [
        {"time_ms": index * 1000, "offset": index * 50_000} for index in range(5)
    ]
    places = TimeMark.objects.filter(session_id=session.id).values_list("sequence", "position")
    assert sorted(places) == [(0, 0), (0, 50_000), (1, 34_464), (2, 18_928), (3, 3_392)]


def test_an_archive_written_before_marks_and_content_types_restores_with_the_defaults(
    api_client, user, archive_path
):
    session, uploads = record_uploaded(api_client, user)
    backup(archive_path)
    wipe(api_client, [session])
    members = archive_members(archive_path)
    record_name = f"sessions/{session.id}.json"
    record = json.loads(dict(members)[record_name])
    del record["content_type"], record["duration_ms"]
    old_record = json.dumps(record, sort_keys=True).encode()
    manifest = json.loads(members[-1][1])
    (entry,) = manifest["sessions"]
    del entry["time_marks"]
    entry["sha256"] = hashlib.sha256(old_record).hexdigest()
    archive_write(
        archive_path,
        [
            *(
                (name, old_record if name == record_name else body)
                for name, body in members[:-1]
                if not name.startswith("marks/")
            ),
            ("manifest.json", json.dumps(manifest).encode()),
        ],
    )

    restore(archive_path)

    detail = api_client.get(f"/api/v1/sessions/{session.id}").json()
    assert (detail["content_type"], detail["duration_ms"]) == ("application/octet-stream", None)
    assert timeline(api_client, session) == {"duration_ms": None, "marks": []}
    assert body_of(api_client.get(f"/api/v1/sessions/{session.id}/recording")) == b"".join(uploads)
    assert offsets(session) == [0, 40_000, 92_000, 153_000]


def test_a_session_restored_while_recording_places_chunks_up_to_the_first_gap(
    api_client, user, archive_path
):
    session = mp4_session(user)
    for sequence in (0, 1, 3):
        upload(api_client, session, sequence)
    wait_until_settled(session)
    backup(archive_path)
    wipe(api_client, [session])

    restore(archive_path)

    assert offsets(session) == [0, 40_000, None]
    assert [mark["offset"] for mark in timeline(api_client, session)["marks"]] == [
        0,
        40_000,
        None,
    ]
    upload(api_client, session, 2)
    assert [mark["offset"] for mark in timeline(api_client, session)["marks"]] == [
        0,
        40_000,
        92_000,
        153_000,
    ]
    stop(api_client, session, duration_ms=6000)
    recording = api_client.get(f"/api/v1/sessions/{session.id}/recording")
    assert body_of(recording) == b"".join(UPLOADS)


def test_a_later_archive_restored_over_an_earlier_one_adds_its_marks_and_places_its_chunks(
    api_client, user, tmp_path
):
    session = mp4_session(user)
    for sequence in (0, 1):
        upload(api_client, session, sequence)
    wait_until_settled(session)
    earlier, later = tmp_path / "earlier.tar.zst", tmp_path / "later.tar.zst"
    backup(earlier)
    for sequence in (2, 3):
        upload(api_client, session, sequence)
    stop(api_client, session, duration_ms=6000)
    backup(later)
    before = seen_by_player(api_client, session)
    wipe(api_client, [session])

    restore(earlier)
    output = restore(later)

    assert "0 new, 1 extended" in output
    assert seen_by_player(api_client, session) == before
    assert offsets(session) == [0, 40_000, 92_000, 153_000]


def test_restoring_over_a_session_whose_marks_differ_is_refused(api_client, user, archive_path):
    session, _ = record_uploaded(api_client, user)
    backup(archive_path)
    TimeMark.objects.filter(session_id=session.id, sequence=1).update(time_ms=2000)
    before = timeline(api_client, session)

    with pytest.raises(
        CommandError, match=f"session {session.id}: the time marks differ at chunk 1 byte 0"
    ):
        restore(archive_path)

    assert timeline(api_client, session) == before


def test_repair_from_a_backup_keeps_the_offsets(api_client, user, archive_path):
    session, _ = record_uploaded(api_client, user)
    backup(archive_path)
    before = seen_by_player(api_client, session)
    damage_stored(Chunk.objects.get(session_id=session.id, sequence=2), "deleted")

    output = restore(archive_path, "--repair")

    assert "repaired 1" in output
    assert seen_by_player(api_client, session) == before
    assert offsets(session) == [0, 40_000, 92_000, 153_000]


def test_marks_that_go_back_in_time_are_rejected_before_any_write(api_client, user, archive_path):
    session, _ = record_uploaded(api_client, user)
    backup(archive_path)
    wipe(api_client, [session])
    members = archive_members(archive_path)
    marks_name = f"marks/{session.id}.json"
    backwards = json.dumps([[0, 0, 0], [1, 0, 3000], [2, 0, 2000], [3, 0, 4500]]).encode()
    manifest = json.loads(members[-1][1])
    manifest["sessions"][0]["time_marks"]["sha256"] = hashlib.sha256(backwards).hexdigest()
    archive_write(
        archive_path,
        [
            *((name, backwards if name == marks_name else body) for name, body in members[:-1]),
            ("manifest.json", json.dumps(manifest).encode()),
        ],
    )

    with pytest.raises(CommandError, match="is not a valid list of time marks.*Nothing was"):
        restore(archive_path)

    assert not Session.objects.filter(pk=session.id).exists()
