"""Orphan cleanup: files without a row go, rows without a file are marked and reported, not lost."""

import os
import time
import uuid
from pathlib import Path

import pytest
from django.utils import timezone

from chunks_app.models import Chunk
from chunks_app.spool import get_spool
from chunks_app.storage import get_chunk_store
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


def make_old(path: Path, *, age: float = 2 * HOUR) -> Path:
    moment = time.time() - age
    os.utime(path, (moment, moment))
    return path


def write_file(path: Path, content: bytes = b"stray bytes", *, age: float = 2 * HOUR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return make_old(path, age=age)


def store_root(settings) -> Path:
    return Path(settings.LUCID_CHUNK_STORE_OPTIONS["root"])


def spool_root() -> Path:
    return get_spool().root


def files_under(*roots: Path) -> dict[str, tuple[bytes, float]]:
    return {
        str(path): (path.read_bytes(), path.stat().st_mtime)
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def rows() -> tuple[list[dict], list[dict]]:
    return (
        list(Session.objects.order_by("pk").values()),
        list(Chunk.objects.order_by("pk").values()),
    )


def statistics_equal_a_recount(client) -> None:
    statistics = client.get("/api/v1/sessions/statistics").json()
    expected = recount_system()
    assert {key: statistics[key] for key in expected} == expected


def test_a_store_file_no_row_names_is_removed(stored_session, no_grace):
    orphan = write_file(store_root(no_grace) / str(stored_session.pk) / "000000000007.zstd")
    unknown_session = write_file(store_root(no_grace) / str(uuid.uuid4()) / "000000000000.none")

    report = clean()

    assert not orphan.exists()
    assert not unknown_session.exists()
    assert sorted(file.key for file in report.files) == sorted(
        [
            f"{stored_session.pk}/000000000007.zstd",
            f"{unknown_session.parent.name}/000000000000.none",
        ]
    )
    assert {file.area for file in report.files} == {"store"}
    assert all(file.reason == "no chunk row names it" for file in report.files)
    assert len(wait_until_settled(stored_session)) == 2


def test_a_spool_file_no_row_names_is_removed(stored_session, no_grace):
    orphan = write_file(spool_root() / str(stored_session.pk) / f"{uuid.uuid4()}.raw")

    report = clean()

    assert not orphan.exists()
    assert [(file.area, file.size) for file in report.files] == [("spool", len(b"stray bytes"))]


def test_stored_chunks_and_their_files_stay(api_client, stored_session, no_grace, settings):
    before = files_under(store_root(settings))

    report = clean()

    assert (report.files, report.leftovers, report.lost_chunks) == ([], [], [])
    assert files_under(store_root(settings)) == before
    for chunk in Chunk.objects.filter(session=stored_session):
        response = download(api_client, stored_session, chunk.sequence)
        assert response.status_code == 200


def test_a_fresh_file_within_the_grace_period_stays(stored_session, settings):
    settings.LUCID_ORPHAN_GRACE_MINUTES = 60
    fresh = write_file(store_root(settings) / str(stored_session.pk) / "000000000007.zstd", age=60)
    old = write_file(store_root(settings) / str(stored_session.pk) / "000000000008.zstd")

    report = clean()

    assert fresh.exists()
    assert not old.exists()
    assert [file.key for file in report.files] == [f"{stored_session.pk}/000000000008.zstd"]


def test_a_fresh_spool_upload_not_yet_committed_stays(waiting_session, settings):
    settings.LUCID_ORPHAN_GRACE_MINUTES = 60
    uploading = write_file(spool_root() / str(waiting_session.pk) / f"{uuid.uuid4()}.raw", age=1)

    clean()

    assert uploading.exists()


def test_files_outside_session_directories_are_never_touched(stored_session, no_grace):
    foreign = [
        write_file(store_root(no_grace) / "lucid.sqlite3"),
        write_file(store_root(no_grace) / "notes" / "readme.txt"),
        write_file(spool_root() / "not-a-session" / "data.raw"),
    ]

    report = clean()

    assert all(path.exists() for path in foreign)
    assert report.files == []


def test_the_open_stream_tail_stays(api_client, user, no_grace):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    data = random_bytes(CHUNK_SIZE + 1000)
    post_stream(api_client, session, data)
    wait_until_settled(session)
    tail = spool_root() / str(session.pk) / "stream-000000000001.raw"
    make_old(tail)

    report = clean()

    assert tail.read_bytes() == data[CHUNK_SIZE:]
    assert report.files == []
    response = api_client.post(f"/api/v1/sessions/{session.id}/stop")
    assert response.status_code == 200
    chunks = wait_until_settled(session)
    assert [(chunk.sequence, chunk.size, chunk.status) for chunk in chunks] == [
        (0, CHUNK_SIZE, "stored"),
        (1, 1000, "stored"),
    ]


def test_the_tail_of_a_paused_stream_stays(api_client, user, no_grace):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    post_stream(api_client, session, random_bytes(5000))
    api_client.post(f"/api/v1/sessions/{session.id}/pause")
    tail = make_old(spool_root() / str(session.pk) / "stream-000000000000.raw")

    clean()

    assert tail.exists()


def test_stream_segments_past_the_acknowledged_tail_are_removed(api_client, user, no_grace):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    post_stream(api_client, session, random_bytes(5000))
    unacknowledged = write_file(spool_root() / str(session.pk) / "stream-000000000003.raw")

    report = clean()

    assert not unacknowledged.exists()
    assert (spool_root() / str(session.pk) / "stream-000000000000.raw").exists()
    assert [file.key for file in report.files] == [f"{session.pk}/stream-000000000003.raw"]


def test_the_spool_copy_of_an_already_stored_chunk_is_removed(stored_session, no_grace):
    chunk = Chunk.objects.get(session=stored_session, sequence=0)
    copy = write_file(spool_root() / chunk.spool_key, screen_like(30_000))

    report = clean()

    assert not copy.exists()
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


def test_leftovers_of_interrupted_writes_are_removed(stored_session, no_grace):
    in_store = write_file(store_root(no_grace) / str(stored_session.pk) / ".000000000000.x.tmp")
    in_spool = write_file(spool_root() / str(stored_session.pk) / ".upload.0123.tmp")
    lock = write_file(spool_root() / str(stored_session.pk) / ".stream.lock", b"")

    report = clean()

    assert not in_store.exists()
    assert not in_spool.exists()
    assert lock.exists()
    assert sorted((leftover.area, leftover.name) for leftover in report.leftovers) == [
        ("spool", f"{stored_session.pk}/.upload.0123.tmp"),
        ("store", f"{stored_session.pk}/.000000000000.x.tmp"),
    ]


def test_fresh_leftovers_stay(stored_session, settings):
    settings.LUCID_ORPHAN_GRACE_MINUTES = 60
    writing = write_file(store_root(settings) / str(stored_session.pk) / ".now.tmp", age=5)

    clean()

    assert writing.exists()


def test_a_dry_run_reports_everything_and_changes_nothing(
    api_client, stored_session, waiting_session, no_grace
):
    write_file(store_root(no_grace) / str(stored_session.pk) / "000000000009.zstd")
    write_file(spool_root() / str(uuid.uuid4()) / ".upload.tmp")
    get_chunk_store().delete(Chunk.objects.get(session=stored_session, sequence=0).storage_key)
    get_spool().delete(Chunk.objects.get(session=waiting_session).spool_key)
    roots = (store_root(no_grace), spool_root())
    files, database, counters = files_under(*roots), rows(), counters_read()

    report = clean(dry_run=True)

    assert (len(report.files), len(report.leftovers), len(report.lost_chunks)) == (1, 1, 2)
    assert files_under(*roots) == files
    assert rows() == database
    assert counters_read() == counters
