"""Repair from a backup (`restore --repair`), and backups that survive damaged chunks."""

import io
import json
import logging
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from chunks_app.models import Chunk
from chunks_app.storage import get_chunk_store
from core.models import AuditEntry
from sessions_app.models import Session
from storage_app.tasks import backup_task
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    damage_stored,
    download,
    put_chunk,
    record_stored,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.lucid.test_metrics import scrape
from tests.sessions_app.test_statistics import recount_session, recount_system
from tests.storage_app.test_backup import (
    archive_members,
    archive_write,
    backup,
    manifest_of,
    restore,
    wipe,
)
from tests.support.faults import DAMAGES, contents

pytestmark = pytest.mark.django_db(transaction=True)

CODECS = ["zstd", "lz4", "gzip", "none"]
BODIES = [screen_like(40_000, seed=sequence) for sequence in range(3)]
LAST_BACKUP = ("lucid_backup_last_success_timestamp_seconds", ())
BACKUP_DAMAGED = ("lucid_backup_damaged_chunks", ())


@pytest.fixture(params=CODECS)
def codec(request) -> str:
    return request.param


@pytest.fixture
def recorded(api_client, user, codec) -> Session:
    """A stopped session of three chunks of BODIES, stored with `codec`."""
    return record_stored(api_client, owner=user, codec=codec, bodies=BODIES)


@pytest.fixture
def archive_path(tmp_path) -> Path:
    return tmp_path / "backups" / "full.tar.zst"


def damage(session: Session, sequence: int, how: str) -> None:
    damage_stored(Chunk.objects.get(session=session, sequence=sequence), how)


def downloads(client, session: Session) -> list[bytes]:
    return [body_of(download(client, session, sequence)) for sequence in range(len(BODIES))]


def statuses(session: Session) -> list[str]:
    return list(Chunk.objects.filter(session=session).order_by("sequence").values_list("status"))


def assert_totals_equal_a_recount(client, session: Session) -> None:
    session_statistics = client.get(f"/api/v1/sessions/{session.id}/statistics").json()
    system = client.get("/api/v1/sessions/statistics").json()
    assert {key: session_statistics[key] for key in recount_session(session)} == recount_session(
        session
    )
    assert {key: system[key] for key in recount_system()} == recount_system()


def command_failure(command: str, *args: str) -> tuple[CommandError, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(command, *args, stdout=out, stderr=io.StringIO())
    return failure.value, out.getvalue()


def store_files() -> dict[str, tuple[bytes, float]]:
    """Every stored key's bytes and modification time, and the store's leftovers."""
    return contents(get_chunk_store())


# --- repair ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", list(DAMAGES))
def test_repair_brings_back_a_chunk_a_read_found_damaged(api_client, recorded, how, archive_path):
    backup(archive_path)
    damage(recorded, 1, how)
    assert download(api_client, recorded, 1).status_code == 500

    output = restore(archive_path, "--repair")

    assert f"repaired session {recorded.id} chunk 1 ({DAMAGES[how]}" in output
    assert "1 already present and unchanged; 3 chunks checked, repaired 1" in output
    assert statuses(recorded) == [("stored",)] * 3
    assert downloads(api_client, recorded) == BODIES
    assert body_of(api_client.get(f"/api/v1/sessions/{recorded.id}/recording")) == b"".join(BODIES)
    assert_totals_equal_a_recount(api_client, recorded)
    (entry,) = AuditEntry.objects.filter(action="chunk_repaired")
    assert (entry.session_id, entry.sequence, entry.actor) == (recorded.id, 1, "command:restore")
    assert entry.detail["archive_id"] == manifest_of(archive_path)["id"]
    assert entry.detail["problem"].startswith(DAMAGES[how])


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_repair_finds_a_missing_or_cut_file_nobody_marked(api_client, recorded, how, archive_path):
    backup(archive_path)
    damage(recorded, 2, how)
    assert statuses(recorded) == [("stored",)] * 3

    output = restore(archive_path, "--repair")

    assert f"repaired session {recorded.id} chunk 2 ({DAMAGES[how]}" in output
    assert downloads(api_client, recorded) == BODIES
    assert_totals_equal_a_recount(api_client, recorded)


@pytest.mark.parametrize("codec", ["zstd"])
def test_repair_brings_back_a_chunk_cleanup_marked_failed_for_its_lost_file(
    api_client, recorded, archive_path
):
    backup(archive_path)
    damage(recorded, 1, "deleted")
    call_command("cleanup", stdout=io.StringIO(), stderr=io.StringIO())
    assert statuses(recorded) == [("stored",), ("failed",), ("stored",)]

    output = restore(archive_path, "--repair")

    assert f"repaired session {recorded.id} chunk 1 (file missing" in output
    assert statuses(recorded) == [("stored",)] * 3
    assert downloads(api_client, recorded) == BODIES
    assert_totals_equal_a_recount(api_client, recorded)


@pytest.mark.parametrize("codec", ["zstd"])
def test_repair_works_under_legal_hold(api_client, recorded, archive_path):
    patched = api_client.patch(f"/api/v1/sessions/{recorded.id}", {"legal_hold": True})
    assert patched.status_code == 200
    backup(archive_path)
    damage(recorded, 0, "flipped")
    assert download(api_client, recorded, 0).status_code == 500
    damage(recorded, 2, "deleted")

    output = restore(archive_path, "--repair")

    assert "repaired 2" in output
    assert downloads(api_client, recorded) == BODIES
    assert Session.objects.get(pk=recorded.id).legal_hold is True


@pytest.mark.parametrize("codec", ["gzip"])
def test_dry_run_lists_the_repairs_and_changes_nothing(api_client, recorded, archive_path):
    backup(archive_path)
    damage(recorded, 1, "flipped")
    assert download(api_client, recorded, 1).status_code == 500
    damage(recorded, 2, "deleted")
    files, rows = store_files(), list(Chunk.objects.values().order_by("sequence"))

    output = restore(archive_path, "--repair", "--dry-run")

    assert f"would repair session {recorded.id} chunk 1 (hash mismatch" in output
    assert f"would repair session {recorded.id} chunk 2 (file missing" in output
    assert "would repair 2" in output
    assert store_files() == files
    assert list(Chunk.objects.values().order_by("sequence")) == rows
    assert not AuditEntry.objects.filter(action="chunk_repaired").exists()


@pytest.mark.parametrize("codec", ["lz4"])
def test_a_second_repair_repairs_nothing_and_says_so(api_client, recorded, archive_path):
    backup(archive_path)
    damage(recorded, 1, "deleted")
    restore(archive_path, "--repair")
    files, rows = store_files(), list(Chunk.objects.values().order_by("sequence"))

    output = restore(archive_path, "--repair")

    assert "3 chunks checked, nothing to repair; nothing to do" in output
    assert store_files() == files
    assert list(Chunk.objects.values().order_by("sequence")) == rows
    assert AuditEntry.objects.filter(action="chunk_repaired").count() == 1


@pytest.mark.parametrize("codec", ["zstd"])
def test_a_healthy_session_is_left_alone_by_restore_with_or_without_repair(recorded, archive_path):
    backup(archive_path)

    assert "1 already present and unchanged; nothing to do" in restore(archive_path)
    assert "3 chunks checked, nothing to repair; nothing to do" in restore(archive_path, "--repair")


def test_a_chunk_the_archive_does_not_hold_is_reported_and_fails_the_repair(
    api_client, user, archive_path
):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    for sequence in (0, 1):
        assert put_chunk(api_client, session, sequence, BODIES[sequence]).status_code == 201
    wait_until_settled(session)
    backup(archive_path)
    assert put_chunk(api_client, session, 2, BODIES[2]).status_code == 201
    wait_until_settled(session)
    damage(session, 0, "deleted")
    damage(session, 2, "deleted")

    error, output = command_failure("restore", str(archive_path), "--repair")

    assert error.returncode == 1
    assert "1 chunks cannot be repaired" in str(error)
    assert f"repaired session {session.id} chunk 0 (file missing" in output
    assert (
        f"cannot repair session {session.id} chunk 2 (file missing from the chunk store): "
        "the archive does not hold it"
    ) in output
    assert statuses(session) == [("stored",)] * 3
    assert body_of(download(api_client, session, 0)) == BODIES[0]


def test_a_repair_across_codecs_makes_the_row_match_the_archived_file(
    api_client, user, archive_path
):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    assert put_chunk(api_client, session, 0, BODIES[0]).status_code == 201
    wait_until_settled(session)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")
    assert put_chunk(api_client, session, 1, BODIES[1]).status_code == 201
    assert statuses(session) == [("stored",), ("received",)]
    backup(archive_path)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/resume")
    (_, stored) = wait_until_settled(session)
    assert stored.algorithm == "zstd"
    damage(session, 1, "truncated")

    restore(archive_path, "--repair")

    chunk = Chunk.objects.get(session=session, sequence=1)
    assert (chunk.status, chunk.algorithm, chunk.storage_key) == (
        "stored",
        "none",
        f"{session.id}/000000000001.none",
    )
    assert store_files()[chunk.storage_key][0] == BODIES[1]
    assert chunk.compressed_size == len(BODIES[1])
    assert body_of(download(api_client, session, 1)) == BODIES[1]
    assert f"{session.id}/000000000001.zstd" not in store_files()
    assert_totals_equal_a_recount(api_client, session)


# --- backups of damaged chunks --------------------------------------------------------------------


def test_a_backup_with_a_damaged_chunk_archives_the_rest_lists_it_and_exits_3(
    api_client, recorded, archive_path
):
    damage(recorded, 1, "flipped")
    sha256 = Chunk.objects.get(session=recorded, sequence=1).sha256

    error, output = command_failure("backup", "--output", str(archive_path))

    assert error.returncode == 3
    assert "completed with 1 damaged chunks" in str(error)
    assert f"DAMAGED session {recorded.id} chunk 1 (sha256 {sha256}): hash mismatch" in output
    assert "1 damaged left out" in output
    manifest = manifest_of(archive_path)
    (listed,) = manifest["damaged"]
    assert (listed["session"], listed["sequence"], listed["sha256"]) == (
        str(recorded.id),
        1,
        sha256,
    )
    assert listed["reason"].startswith("hash mismatch in the chunk store")
    assert [entry["sequence"] for entry in manifest["chunks"]] == [0, 2]
    members = [name for name, _ in archive_members(archive_path)]
    assert not any(name.startswith(f"chunks/{recorded.id}/000000000001") for name in members)
    assert statuses(recorded) == [("stored",), ("damaged",), ("stored",)]


@pytest.mark.parametrize("codec", ["zstd"])
def test_restoring_a_backup_with_a_damaged_chunk_restores_the_rest_and_shows_the_damage(
    api_client, recorded, tmp_path, archive_path
):
    healthy = tmp_path / "healthy.tar.zst"
    backup(healthy)
    before = api_client.get(f"/api/v1/sessions/{recorded.id}/manifest").json()
    damage(recorded, 1, "truncated")
    command_failure("backup", "--output", str(archive_path))
    wipe(api_client, [recorded])

    output = restore(archive_path)

    assert f"restore as damaged (not in the archive): session {recorded.id} chunk 1" in output
    assert "1 chunks damaged before the backup" in output
    assert api_client.get(f"/api/v1/sessions/{recorded.id}/manifest").json() == before
    assert statuses(recorded) == [("stored",), ("damaged",), ("stored",)]
    assert [body_of(download(api_client, recorded, n)) for n in (0, 2)] == [BODIES[0], BODIES[2]]
    damaged = download(api_client, recorded, 1)
    assert (damaged.status_code, damaged.json()["code"]) == (500, "chunk_damaged")
    assert Chunk.objects.get(session=recorded, sequence=1).error.startswith(
        f"damaged before archive {manifest_of(archive_path)['id']} was written: truncated"
    )
    assert_totals_equal_a_recount(api_client, recorded)

    error, again = command_failure("restore", str(archive_path), "--repair")
    assert "the archive lists it as damaged too" in again and error.returncode == 1
    assert "repaired 1" in restore(healthy, "--repair")
    assert downloads(api_client, recorded) == BODIES


@pytest.mark.parametrize("codec", ["zstd"])
def test_an_archive_without_a_damaged_list_still_restores(api_client, recorded, archive_path):
    backup(archive_path)
    members = archive_members(archive_path)
    manifest = json.loads(members[-1][1])
    del manifest["damaged"]
    archive_write(archive_path, [*members[:-1], ("manifest.json", json.dumps(manifest).encode())])
    wipe(api_client, [recorded])

    assert "restored 1 sessions" in restore(archive_path)
    assert downloads(api_client, recorded) == BODIES


@pytest.mark.parametrize("codec", ["zstd"])
def test_metrics_show_the_last_full_backup_and_its_damaged_chunks(
    api_client, recorded, archive_path, tmp_path
):
    healthy = tmp_path / "healthy.tar.zst"
    backup(healthy, "--sessions", str(recorded.id))
    never = scrape(api_client)
    damage(recorded, 0, "deleted")
    started = time.time()

    command_failure("backup", "--output", str(archive_path))
    damaged = scrape(api_client)
    restore(healthy, "--repair")
    backup(tmp_path / "repaired.tar.zst")
    repaired = scrape(api_client)

    assert (never[LAST_BACKUP], never[BACKUP_DAMAGED]) == (0, 0)
    assert started - 1 <= damaged[LAST_BACKUP] <= repaired[LAST_BACKUP] <= time.time()
    assert (damaged[BACKUP_DAMAGED], repaired[BACKUP_DAMAGED]) == (1, 0)


def test_the_scheduled_backup_completes_with_damaged_chunks_and_warns(
    api_client, user, settings, tmp_path, caplog
):
    settings.LUCID_BACKUP_PATH = tmp_path / "scheduled"
    session = record_stored(api_client, owner=user, codec="zstd", bodies=BODIES)
    damage(session, 2, "deleted")

    with caplog.at_level(logging.WARNING, logger="storage_app.tasks"):
        written = Path(backup_task())

    assert written.is_file()
    assert [entry["sequence"] for entry in manifest_of(written)["damaged"]] == [2]
    assert "backup completed with 1 damaged chunks" in caplog.text
    assert f"{session.id} chunk 2: file missing from the chunk store" in caplog.text
