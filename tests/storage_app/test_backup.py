"""Backup and restore: byte-identical after a wipe, verified whole before anything is written."""

import hashlib
import io
import json
import os
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zstandard
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from chunks_app.models import Chunk
from chunks_app.storage import get_chunk_store, get_spool
from core.models import AuditEntry
from sessions_app.models import Session
from storage_app.backup.create import backup_rotate
from storage_app.tasks import backup_task
from tests.chunks_app.helpers import (
    KIB,
    body_of,
    download,
    post_stream,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory, UserFactory
from tests.support.faults import remains

pytestmark = pytest.mark.django_db(transaction=True)
CHUNK_SIZE = 64 * KIB


def record_uploads(client, owner, bodies: list[bytes], *, stop: bool = True) -> Session:
    session = SessionFactory(owner=owner, status="recording", chunk_size=CHUNK_SIZE)
    for sequence, body in enumerate(bodies):
        assert put_chunk(client, session, sequence, body).status_code == 201
    if stop:
        assert client.post(f"/api/v1/sessions/{session.id}/stop").status_code == 200
    wait_until_settled(session)
    return session


def record_stream(client, owner, data: bytes) -> Session:
    session = SessionFactory(owner=owner, status="recording", chunk_size=CHUNK_SIZE)
    assert post_stream(client, session, data).status_code == 200
    assert client.post(f"/api/v1/sessions/{session.id}/stop").status_code == 200
    wait_until_settled(session)
    return session


def seen_by_user(client, session_id) -> dict:
    """Everything a user reads about a session: its fields, bytes, manifest and statistics."""
    base = f"/api/v1/sessions/{session_id}"
    chunks = Chunk.objects.filter(session_id=session_id).order_by("sequence")
    session = Session.objects.get(pk=session_id)
    return {
        "detail": client.get(base).json(),
        "recording": body_of(client.get(f"{base}/recording")),
        "downloads": [body_of(download(client, session, chunk.sequence)) for chunk in chunks],
        "manifest": client.get(f"{base}/manifest").json(),
        "statistics": client.get(f"{base}/statistics").json(),
    }


def system_statistics(client) -> dict:
    statistics = client.get("/api/v1/sessions/statistics").json()
    statistics.pop("storage")
    return statistics


def stored_files() -> list[str]:
    """Whatever the chunk store and the spool hold, hidden files and unfinished uploads too."""
    return remains(get_chunk_store()) + remains(get_spool())


def wipe(client, sessions: list[Session]) -> None:
    for session in sessions:
        assert client.delete(f"/api/v1/sessions/{session.id}").status_code == 204


def backup(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("backup", "--output", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def restore(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("restore", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def archive_members(path: Path) -> list[tuple[str, bytes]]:
    with path.open("rb") as file:
        reader = zstandard.ZstdDecompressor().stream_reader(file)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            return [(member.name, tar.extractfile(member).read()) for member in tar]


def archive_write(path: Path, members: list[tuple[str, bytes]]) -> None:
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    with (
        path.open("wb") as file,
        compressor.stream_writer(file) as writer,
        tarfile.open(fileobj=writer, mode="w|") as tar,
    ):
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def manifest_of(path: Path) -> dict:
    name, data = archive_members(path)[-1]
    assert name == "manifest.json"
    return json.loads(data)


@pytest.fixture
def archive_path(tmp_path) -> Path:
    return tmp_path / "backups" / "full.tar.zst"


@pytest.fixture
def recorded(api_client, user) -> list[Session]:
    uploaded = record_uploads(
        api_client, user, [screen_like(60_000, seed=s) for s in range(3)] + [random_bytes(9000)]
    )
    streamed = record_stream(api_client, user, random_bytes(CHUNK_SIZE * 2 + 999))
    return [uploaded, streamed]


def test_backup_wipe_restore_gives_identical_downloads_roots_and_statistics(
    api_client, recorded, archive_path
):
    before = {session.id: seen_by_user(api_client, session.id) for session in recorded}
    system_before = system_statistics(api_client)

    summary = backup(archive_path)
    wipe(api_client, recorded)
    assert stored_files() == []
    output = restore(archive_path)

    assert summary.startswith("backup: 2 sessions, 7 chunks")
    assert "restored 2 sessions" in output
    after = {session.id: seen_by_user(api_client, session.id) for session in recorded}
    assert after == before
    assert all(state["manifest"]["merkle_root"] for state in after.values())
    assert system_statistics(api_client) == system_before
    assert not archive_path.with_name(archive_path.name + ".partial").exists()


def test_restoring_the_same_archive_twice_changes_nothing_the_second_time(
    api_client, recorded, archive_path
):
    backup(archive_path)
    wipe(api_client, recorded)
    restore(archive_path)
    files, system = stored_files(), system_statistics(api_client)
    rows = sorted(Chunk.objects.values_list("id", "status", "storage_key"))

    output = restore(archive_path)

    assert "restored 0 sessions" in output
    assert "2 already present and unchanged; nothing to do" in output
    assert stored_files() == files
    assert sorted(Chunk.objects.values_list("id", "status", "storage_key")) == rows
    assert system_statistics(api_client) == system


def test_dry_run_verifies_and_writes_nothing(api_client, recorded, archive_path):
    backup(archive_path)
    wipe(api_client, recorded)

    output = restore(archive_path, "--dry-run")

    assert "nothing written" in output
    assert "would restore 2 sessions" in output
    assert Session.objects.count() == 0
    assert stored_files() == []


def test_a_changed_byte_in_a_chunk_member_is_rejected_before_any_write(
    api_client, recorded, archive_path
):
    backup(archive_path)
    wipe(api_client, recorded)
    members = archive_members(archive_path)
    index = next(i for i, (name, _) in enumerate(members) if name.startswith("chunks/"))
    name, data = members[index]
    members[index] = (name, data[:100] + bytes([data[100] ^ 0x01]) + data[101:])
    archive_write(archive_path, members)

    with pytest.raises(CommandError, match="is damaged.*Nothing was restored"):
        restore(archive_path)

    assert Session.objects.count() == 0
    assert Chunk.objects.count() == 0
    assert stored_files() == []


def test_a_flipped_byte_in_the_compressed_archive_is_rejected_before_any_write(
    api_client, recorded, archive_path
):
    backup(archive_path)
    wipe(api_client, recorded)
    damaged = bytearray(archive_path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    archive_path.write_bytes(bytes(damaged))

    with pytest.raises(CommandError, match="is damaged"):
        restore(archive_path)

    assert Session.objects.count() == 0
    assert stored_files() == []


def test_a_truncated_archive_is_rejected(api_client, recorded, archive_path):
    backup(archive_path)
    wipe(api_client, recorded)
    archive_path.write_bytes(archive_path.read_bytes()[:-7])

    with pytest.raises(CommandError, match="truncated"):
        restore(archive_path)

    assert Session.objects.count() == 0


def test_restoring_over_a_session_with_other_data_is_refused_and_changes_nothing(
    api_client, user, archive_path
):
    live = record_uploads(api_client, user, [screen_like(30_000), screen_like(30_000, seed=1)])
    gone = record_uploads(api_client, user, [screen_like(20_000, seed=2)])
    backup(archive_path)
    wipe(api_client, [gone])
    members = archive_members(archive_path)
    manifest = json.loads(members[-1][1])
    other_raw = screen_like(30_000, seed=5)
    other_stored = zstandard.ZstdCompressor(write_content_size=True).compress(other_raw)
    entry = next(
        e for e in manifest["chunks"] if e["session"] == str(live.id) and e["sequence"] == 1
    )
    entry.update(
        size=len(other_raw),
        sha256=hashlib.sha256(other_raw).hexdigest(),
        algorithm="zstd",
        stored_size=len(other_stored),
        stored_sha256=hashlib.sha256(other_stored).hexdigest(),
    )
    members = [
        (name, other_stored if name == entry["member"] else data) for name, data in members[:-1]
    ]
    record_name = f"sessions/{live.id}.json"
    record = json.loads(dict(members)[record_name])
    record["merkle_root"] = ""
    members = [
        (name, json.dumps(record).encode() if name == record_name else data)
        for name, data in members
    ]
    session_entry = next(s for s in manifest["sessions"] if s["id"] == str(live.id))
    session_entry["sha256"] = hashlib.sha256(dict(members)[record_name]).hexdigest()
    archive_write(archive_path, [*members, ("manifest.json", json.dumps(manifest).encode())])
    before, files = seen_by_user(api_client, live.id), stored_files()

    with pytest.raises(CommandError, match=f"session {live.id}: chunks 1 differ"):
        restore(archive_path)

    assert seen_by_user(api_client, live.id) == before
    assert stored_files() == files
    assert not Session.objects.filter(pk=gone.id).exists()


def test_an_incremental_backup_holds_only_new_chunks_and_restores_after_its_base(
    api_client, user, tmp_path
):
    growing = record_uploads(
        api_client, user, [screen_like(40_000, seed=s) for s in (0, 1)], stop=False
    )
    base_path, increment_path = tmp_path / "base.tar.zst", tmp_path / "increment.tar.zst"
    backup(base_path)
    for sequence in (2, 3):
        put_chunk(api_client, growing, sequence, screen_like(40_000, seed=sequence))
    api_client.post(f"/api/v1/sessions/{growing.id}/stop")
    wait_until_settled(growing)
    newcomer = record_stream(api_client, user, random_bytes(CHUNK_SIZE + 5))
    before = {s.id: seen_by_user(api_client, s.id) for s in (growing, newcomer)}
    system_before = system_statistics(api_client)

    summary = backup(increment_path, "--incremental", str(base_path))
    base_id = manifest_of(base_path)["id"]
    increment = manifest_of(increment_path)
    wipe(api_client, [growing, newcomer])

    chunk_members = [name for name, _ in archive_members(increment_path) if "chunks/" in name]
    assert chunk_members == [
        f"chunks/{growing.id}/000000000002.zstd",
        f"chunks/{growing.id}/000000000003.zstd",
        f"chunks/{newcomer.id}/000000000000.none",
        f"chunks/{newcomer.id}/000000000001.none",
    ]
    assert increment["base"] == base_id
    assert [e.get("in_base") for e in increment["chunks"] if e["session"] == str(growing.id)] == [
        base_id,
        base_id,
        None,
        None,
    ]
    assert f"2 in base {base_id}" in summary
    with pytest.raises(CommandError, match=f"restore the base archive {base_id} first"):
        restore(increment_path)
    assert Session.objects.count() == 0
    assert stored_files() == []

    restore(base_path)
    output = restore(increment_path)

    assert "1 new, 1 extended" in output
    assert {s.id: seen_by_user(api_client, s.id) for s in (growing, newcomer)} == before
    assert system_statistics(api_client) == system_before


@pytest.mark.parametrize(
    "spelling",
    [["--session", "{first}", "--session", "{third}"], ["--sessions", "{first}", "{third}"]],
    ids=["repeated", "older-spelling"],
)
def test_session_option_selects_only_those_sessions(user, tmp_path, spelling):
    first, second, third = (SessionFactory(owner=user, status="stopped") for _ in range(3))

    backup(
        tmp_path / "some.tar.zst", *(arg.format(first=first.id, third=third.id) for arg in spelling)
    )

    sessions = {entry["id"] for entry in manifest_of(tmp_path / "some.tar.zst")["sessions"]}
    assert sessions == {str(first.id), str(third.id)}


def test_since_selects_sessions_created_at_or_after_that_time(user, tmp_path):
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    older, exact, newer = (
        SessionFactory(owner=user, status="stopped", created_at=start + timedelta(hours=hours))
        for hours in (-1, 0, 2)
    )

    backup(tmp_path / "since.tar.zst", "--since", "2026-03-01T12:00:00Z")

    sessions = {entry["id"] for entry in manifest_of(tmp_path / "since.tar.zst")["sessions"]}
    assert sessions == {str(exact.id), str(newer.id)}


def test_an_unknown_session_fails_the_backup_and_leaves_no_file(user, tmp_path):
    with pytest.raises(CommandError, match="No session with id"):
        backup(tmp_path / "none.tar.zst", "--sessions", "6f1c1f9e-0000-4000-8000-000000000000")

    assert list(tmp_path.glob("none.tar.zst*")) == []


def test_restore_creates_a_missing_owner_inactive_and_says_so(api_client, archive_path):
    recorder = UserFactory(username="someone-else", roles=["recorder"])
    session = record_uploads(api_client, recorder, [screen_like(10_000)])
    backup(archive_path)
    wipe(api_client, [session])
    recorder.delete()

    output = restore(archive_path)

    owner = get_user_model().objects.get(username="someone-else")
    assert not owner.is_active
    assert not owner.has_usable_password()
    assert Session.objects.get(pk=session.id).owner == owner
    assert "created user 'someone-else', inactive and without a password" in output


def test_restore_gives_each_session_its_complete_from_its_chunks(api_client, user, archive_path):
    gapless = record_uploads(api_client, user, [screen_like(1000, seed=s) for s in range(2)])
    gapped = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    for sequence in (0, 2):
        assert put_chunk(api_client, gapped, sequence, screen_like(1000)).status_code == 201
    assert api_client.post(f"/api/v1/sessions/{gapped.id}/stop").status_code == 200
    wait_until_settled(gapped)
    backup(archive_path)
    records = [
        json.loads(data)
        for name, data in archive_members(archive_path)
        if name.startswith("sessions/")
    ]
    wipe(api_client, [gapless, gapped])

    restore(archive_path)

    assert all("complete" not in record for record in records)
    assert Session.objects.get(pk=gapless.id).complete is True
    assert Session.objects.get(pk=gapped.id).complete is False


def test_backup_rotate_keeps_the_newest_archives(tmp_path):
    for day in (3, 1, 4, 2):
        path = tmp_path / f"lucid-backup-2026010{day}T000000Z.tar.zst"
        path.write_bytes(b"archive")
        os.utime(path, (1_767_225_600 + day * 86_400,) * 2)
    for name in ("notes.txt", "lucid-backup-20260105T000000Z.tar.zst.partial"):
        (tmp_path / name).write_bytes(b"other")

    removed = backup_rotate(directory=tmp_path, keep=2)

    assert [path.name for path in removed] == [
        "lucid-backup-20260101T000000Z.tar.zst",
        "lucid-backup-20260102T000000Z.tar.zst",
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "lucid-backup-20260103T000000Z.tar.zst",
        "lucid-backup-20260104T000000Z.tar.zst",
        "lucid-backup-20260105T000000Z.tar.zst.partial",
        "notes.txt",
    ]


def test_backups_and_restored_sessions_are_audited(api_client, recorded, archive_path):
    backup(archive_path)
    archive_id = manifest_of(archive_path)["id"]
    wipe(api_client, recorded)

    restore(archive_path)
    restore(archive_path)

    (created,) = AuditEntry.objects.filter(action="backup_created")
    assert created.actor == "command:backup"
    assert created.detail["archive_id"] == archive_id
    restored = AuditEntry.objects.filter(action="backup_restored")
    assert sorted(entry.session_id for entry in restored) == sorted(s.id for s in recorded)
    assert {(entry.actor, entry.detail["archive_id"]) for entry in restored} == {
        ("command:restore", archive_id)
    }


def test_backup_task_writes_an_archive_into_the_backup_path_and_rotates(
    api_client, user, settings, tmp_path
):
    settings.LUCID_BACKUP_PATH = tmp_path / "scheduled"
    settings.LUCID_BACKUP_KEEP = 1
    settings.LUCID_BACKUP_PATH.mkdir()
    (settings.LUCID_BACKUP_PATH / "lucid-backup-20000101T000000Z.tar.zst").write_bytes(b"old")
    session = record_uploads(api_client, user, [screen_like(10_000)])

    written = Path(backup_task())

    assert list(settings.LUCID_BACKUP_PATH.iterdir()) == [written]
    assert written.name.startswith("lucid-backup-") and written.name.endswith(".tar.zst")
    assert [entry["id"] for entry in manifest_of(written)["sessions"]] == [str(session.id)]
    assert "1 already present and unchanged" in restore(written, "--dry-run")
    assert AuditEntry.objects.get(action="backup_created").actor == "task:backup"
