"""Orphan cleanup: files without a row go, rows without a file are marked and reported, not lost."""

import os
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from chunks_app.models import Chunk
from chunks_app.spool import get_spool, session_stream
from chunks_app.storage import ChunkStore, get_chunk_store
from core.counters import counters_read
from sessions_app.models import Session
from storage_app.cleanup import MISSING, orphans_clean, orphans_find
from tests.chunks_app.helpers import (
    KIB,
    download,
    post_stream,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.sessions_app.test_statistics import recount_system
from tests.support.faults import contents, leftover_make, leftover_names, moment, put_after

pytestmark = pytest.mark.django_db(transaction=True)
CHUNK_SIZE = 64 * KIB
HOUR = 3600


@pytest.fixture
def no_grace(settings):
    settings.LUCID_ORPHAN_GRACE_MINUTES = 0
    return settings


@pytest.fixture
def stored_session(api_client, user):
    """A stopped session with two stored chunks."""
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    put_chunk(api_client, session, 0, screen_like(30_000))
    put_chunk(api_client, session, 1, random_bytes(20_000))
    wait_until_settled(session)
    api_client.post(f"/api/v1/sessions/{session.id}/stop")
    return session


@pytest.fixture
def waiting_session(api_client, user):
    """A recording session whose paused pipeline keeps its one chunk `received`."""
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")
    put_chunk(api_client, session, 0, screen_like(10_000))
    return session


def clean(*, dry_run: bool = False):
    return orphans_clean(report=orphans_find(now=timezone.now()), dry_run=dry_run)


def stray(store: ChunkStore, key: str, content: bytes = b"stray bytes") -> str:
    """A file no chunk row names, written as an interrupted pipeline or upload leaves one."""
    store.put(key, [content])
    return key


def session_keys(store: ChunkStore, session_id) -> set[str]:
    return set(store.keys(f"{session_id}/"))


def rows() -> tuple[list[dict], list[dict]]:
    return (
        list(Session.objects.order_by("pk").values()),
        list(Chunk.objects.order_by("pk").values()),
    )


def statistics_equal_a_recount(client) -> None:
    statistics = client.get("/api/v1/sessions/statistics").json()
    expected = recount_system()
    assert {key: statistics[key] for key in expected} == expected


def test_a_store_file_no_row_names_is_removed(stored_session, no_grace, clock):
    store = get_chunk_store()
    orphan = stray(store, f"{stored_session.pk}/000000000007.zstd")
    unknown_session = stray(store, f"{uuid.uuid4()}/000000000000.none")
    clock.advance(2 * HOUR)

    report = clean()

    assert not store.exists(orphan)
    assert not store.exists(unknown_session)
    assert sorted(file.key for file in report.files) == sorted([orphan, unknown_session])
    assert {file.area for file in report.files} == {"store"}
    assert all(file.reason == "no chunk row names it" for file in report.files)
    assert len(wait_until_settled(stored_session)) == 2


def test_a_spool_file_no_row_names_is_removed(stored_session, no_grace, clock):
    orphan = stray(get_spool(), f"{stored_session.pk}/{uuid.uuid4()}.raw")
    clock.advance(2 * HOUR)

    report = clean()

    assert not get_spool().exists(orphan)
    assert [(file.area, file.size) for file in report.files] == [("spool", len(b"stray bytes"))]


def test_stored_chunks_and_their_files_stay(api_client, stored_session, no_grace, clock):
    before = contents(get_chunk_store())
    clock.advance(2 * HOUR)

    report = clean()

    assert (report.files, report.leftovers, report.lost_chunks) == ([], [], [])
    assert contents(get_chunk_store()) == before
    for chunk in Chunk.objects.filter(session=stored_session):
        response = download(api_client, stored_session, chunk.sequence)
        assert response.status_code == 200


def test_a_fresh_file_within_the_grace_period_stays(stored_session, settings, clock):
    settings.LUCID_ORPHAN_GRACE_MINUTES = 60
    store = get_chunk_store()
    old = stray(store, f"{stored_session.pk}/000000000008.zstd")
    fresh = f"{stored_session.pk}/000000000007.zstd"
    between = put_after(store, fresh, b"stray bytes", than=old)
    clock.set(moment(between) + timedelta(minutes=60))

    report = clean()

    assert store.exists(fresh)
    assert not store.exists(old)
    assert [file.key for file in report.files] == [old]


def test_a_fresh_spool_upload_not_yet_committed_stays(waiting_session, settings):
    settings.LUCID_ORPHAN_GRACE_MINUTES = 60
    uploading = stray(get_spool(), f"{waiting_session.pk}/{uuid.uuid4()}.raw")

    clean()

    assert get_spool().exists(uploading)


def test_files_outside_session_directories_are_never_touched(stored_session, no_grace, clock):
    store, spool = get_chunk_store(), get_spool()
    foreign = [
        (store, stray(store, "lucid.sqlite3")),
        (store, stray(store, "notes/readme.txt")),
        (spool, stray(spool, "not-a-session/data.raw")),
    ]
    clock.advance(2 * HOUR)

    report = clean()

    assert all(where.exists(key) for where, key in foreign)
    assert report.files == []


def test_the_open_stream_tail_stays(api_client, user, no_grace, clock):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    data = random_bytes(CHUNK_SIZE + 1000)
    post_stream(api_client, session, data)
    wait_until_settled(session)
    clock.advance(2 * HOUR)

    report = clean()

    session.refresh_from_db()
    stream = session_stream(session_id=session.pk, chunk_size=CHUNK_SIZE)
    assert stream.read(sequence=1, size=1000, part=session.stream_part) == data[CHUNK_SIZE:]
    assert report.files == []
    response = api_client.post(f"/api/v1/sessions/{session.id}/stop")
    assert response.status_code == 200
    chunks = wait_until_settled(session)
    assert [(chunk.sequence, chunk.size, chunk.status) for chunk in chunks] == [
        (0, CHUNK_SIZE, "stored"),
        (1, 1000, "stored"),
    ]


def test_the_tail_of_a_paused_stream_stays(api_client, user, no_grace, clock):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    post_stream(api_client, session, random_bytes(5000))
    api_client.post(f"/api/v1/sessions/{session.id}/pause")
    tail = session_keys(get_spool(), session.pk)
    clock.advance(2 * HOUR)

    clean()

    assert tail
    assert session_keys(get_spool(), session.pk) == tail


def test_stream_segments_past_the_acknowledged_tail_are_removed(api_client, user, no_grace, clock):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    post_stream(api_client, session, random_bytes(5000))
    acknowledged = session_keys(get_spool(), session.pk)
    stream = session_stream(session_id=session.pk, chunk_size=CHUNK_SIZE)
    with stream.locked():
        stream.append(offset=3 * CHUNK_SIZE, part="", pieces=[b"never acknowledged"])
    (unacknowledged,) = session_keys(get_spool(), session.pk) - acknowledged
    clock.advance(2 * HOUR)

    report = clean()

    assert session_keys(get_spool(), session.pk) == acknowledged
    assert [file.key for file in report.files] == [unacknowledged]


@pytest.fixture
def spooled_uploads(settings):
    """Uploads go through the spool, as with a broker, even where they could be stored at once."""
    settings.LUCID_STORE_ON_RECEIPT_MAX_KB = 0


def test_the_spool_copy_of_an_already_stored_chunk_is_removed(
    spooled_uploads, stored_session, no_grace, clock
):
    chunk = Chunk.objects.get(session=stored_session, sequence=0)
    copy = stray(get_spool(), chunk.spool_key, screen_like(30_000))
    clock.advance(2 * HOUR)

    report = clean()

    assert not get_spool().exists(copy)
    assert report.files[0].reason == f"chunk 0 is already stored as {chunk.storage_key}"


def test_a_stored_chunk_whose_file_is_gone_is_marked_failed_and_reported(
    api_client, stored_session, no_grace
):
    chunk = Chunk.objects.get(session=stored_session, sequence=1)
    get_chunk_store().delete(chunk.storage_key)

    report = clean()

    chunk.refresh_from_db()
    assert chunk.status == "failed"
    assert chunk.error == f"stored file missing: {chunk.storage_key}; restore from a backup"
    assert [(lost.sequence, lost.status, lost.area) for lost in report.lost_chunks] == [
        (1, "stored", "store")
    ]
    assert Chunk.objects.filter(session=stored_session).count() == 2
    assert Chunk.objects.get(session=stored_session, sequence=0).status == "stored"
    statistics_equal_a_recount(api_client)


def test_a_received_chunk_whose_spool_file_is_gone_is_marked_failed(
    api_client, waiting_session, no_grace
):
    chunk = Chunk.objects.get(session=waiting_session)
    get_spool().delete(chunk.spool_key)

    report = clean()

    chunk.refresh_from_db()
    assert chunk.status == "failed"
    assert chunk.error.startswith(f"spooled file missing: {chunk.spool_key}")
    assert [(lost.sequence, lost.status, lost.area) for lost in report.lost_chunks] == [
        (0, "received", "spool")
    ]
    waiting_session.refresh_from_db()
    assert (waiting_session.chunks_received, waiting_session.chunks_failed) == (0, 1)
    assert waiting_session.backlog_bytes == 0
    statistics_equal_a_recount(api_client)


def test_a_failed_chunk_whose_file_is_gone_is_reported_once(api_client, user, no_grace):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")
    put_chunk(api_client, session, 0, screen_like(3000))
    get_spool().put(Chunk.objects.get(session=session).spool_key, [b"cut short"])
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/resume")
    (chunk,) = wait_until_settled(session)
    assert chunk.status == "failed"
    earlier = chunk.error
    get_spool().delete(chunk.spool_key)

    first, second = clean(), clean()

    chunk.refresh_from_db()
    assert chunk.status == "failed"
    assert chunk.error == (
        f"spooled {MISSING}{chunk.spool_key}; upload the chunk again or restore from a backup; "
        f"earlier: {earlier}"
    )
    assert [lost.status for lost in first.lost_chunks] == ["failed"]
    assert second.lost_chunks == []
    statistics_equal_a_recount(api_client)


def test_lost_chunks_are_marked_only_once(api_client, stored_session, no_grace):
    chunk = Chunk.objects.get(session=stored_session, sequence=0)
    get_chunk_store().delete(chunk.storage_key)

    first, second = clean(), clean()

    assert len(first.lost_chunks) == 1
    assert second.lost_chunks == []
    statistics_equal_a_recount(api_client)


def test_leftovers_of_interrupted_writes_are_removed(stored_session, no_grace, clock):
    in_store = leftover_make(get_chunk_store(), f"{stored_session.pk}/000000000000.x")
    in_spool = leftover_make(get_spool(), f"{stored_session.pk}/upload.0123")
    clock.advance(2 * HOUR)

    report = clean()

    assert in_store not in leftover_names(get_chunk_store())
    assert in_spool not in leftover_names(get_spool())
    assert sorted((leftover.area, leftover.name) for leftover in report.leftovers) == [
        ("spool", in_spool),
        ("store", in_store),
    ]


@pytest.mark.filesystem_only("the lock file of a stream's segment files")
def test_the_lock_of_a_stream_is_not_a_leftover(api_client, user, no_grace):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    post_stream(api_client, session, random_bytes(5000))
    lock = get_spool().root / str(session.pk) / ".stream.lock"
    two_hours_ago = time.time() - 2 * HOUR
    os.utime(lock, (two_hours_ago, two_hours_ago))

    report = clean()

    assert lock.exists()
    assert report.leftovers == []


def test_fresh_leftovers_stay(stored_session, settings):
    settings.LUCID_ORPHAN_GRACE_MINUTES = 60
    writing = leftover_make(get_chunk_store(), f"{stored_session.pk}/now")

    clean()

    assert writing in leftover_names(get_chunk_store())


def test_a_dry_run_reports_everything_and_changes_nothing(
    api_client, stored_session, waiting_session, no_grace, clock
):
    store, spool = get_chunk_store(), get_spool()
    stray(store, f"{stored_session.pk}/000000000009.zstd")
    leftover_make(spool, f"{uuid.uuid4()}/upload")
    store.delete(Chunk.objects.get(session=stored_session, sequence=0).storage_key)
    spool.delete(Chunk.objects.get(session=waiting_session).spool_key)
    clock.advance(2 * HOUR)
    files = (contents(store), contents(spool))
    database, counters = rows(), counters_read()

    report = clean(dry_run=True)

    assert (len(report.files), len(report.leftovers), len(report.lost_chunks)) == (1, 1, 2)
    assert (contents(store), contents(spool)) == files
    assert rows() == database
    assert counters_read() == counters
