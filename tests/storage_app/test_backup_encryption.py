"""Backups of encrypted sessions: sealed members in the archive, restored under their own key."""

import json
from pathlib import Path

import pytest
import zstandard
from django.core.management import CommandError

from chunks_app.models import Chunk
from chunks_app.spool import session_stream
from chunks_app.storage import get_chunk_store
from core.encryption import generate_key_line, read_header
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    damage_stored,
    download,
    post_stream,
    put_chunk,
    random_bytes,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.storage_app.test_backup import (
    archive_members,
    archive_write,
    backup,
    manifest_of,
    record_uploads,
    restore,
    seen_by_user,
    stored_files,
    wipe,
)

pytestmark = pytest.mark.django_db(transaction=True)

LINE_A = generate_key_line("A")
LINE_B = generate_key_line("B")
# Typed text, repeated: any codec keeps one copy of the line (73 bytes) as it is.
TYPED = b"root@db-01:~# mysql -u admin -pS3cretPassw0rd --host=db.internal.example\n"
# What the check for runs of the input looks for: every 64-byte run holds one of these.
BLOCK = 32
BODIES = [TYPED * 500, b"\x00\xff" * 15_000]


def typed_text(size: int) -> bytes:
    return (TYPED * (size // len(TYPED) + 1))[:size]


def keys(settings, *lines: str, active: str) -> None:
    settings.LUCID_ENCRYPTION_KEYS = ",".join(lines)
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = active


@pytest.fixture
def key_a(settings):
    """Key A configured and active."""
    keys(settings, LINE_A, active="A")
    return settings


@pytest.fixture
def archive_path(tmp_path) -> Path:
    return tmp_path / "backups" / "sealed.tar.zst"


def record_live_stream(client, owner, data: bytes) -> Session:
    """A session still recording, streamed `data` in two appends, its chunks stored; the bytes
    past its last full chunk wait in the open stream segment."""
    session = SessionFactory(owner=owner, status="recording", chunk_size=CHUNK_SIZE)
    middle = len(data) // 2
    for part in (data[:middle], data[middle:]):
        assert post_stream(client, session, part).status_code == 200
    wait_until_settled(session)
    return session


def seen(client, session_id) -> dict:
    """What a user reads about a session, but for how long a recording session has lasted."""
    state = seen_by_user(client, session_id)
    state["statistics"].pop("duration_seconds")
    return state


def stream_data() -> bytes:
    """Two full chunks and an open tail, each part of typed text and of random bytes."""
    half = CHUNK_SIZE // 2
    return (
        typed_text(half)
        + random_bytes(half)
        + random_bytes(half)
        + typed_text(half)
        + typed_text(3000)
        + random_bytes(2000)
    )


def aligned_blocks(data: bytes) -> set[bytes]:
    return {data[start : start + BLOCK] for start in range(0, len(data) - BLOCK + 1, BLOCK)}


def blocks_found(blob: bytes, blocks: set[bytes]) -> int:
    """How many BLOCK-byte runs of `blob`, at any offset, are among `blocks`."""
    return sum(blob[start : start + BLOCK] in blocks for start in range(len(blob) - BLOCK + 1))


def decompressed(path: Path) -> bytes:
    with path.open("rb") as file:
        return zstandard.ZstdDecompressor().stream_reader(file).read()


def member_flipped(path: Path, name: str) -> None:
    """Rewrite the archive with one byte in the middle of member `name` flipped."""
    members = archive_members(path)
    index = next(i for i, (member, _) in enumerate(members) if member == name)
    data = bytearray(members[index][1])
    data[len(data) // 2] ^= 0x01
    members[index] = (name, bytes(data))
    archive_write(path, members)


def chunk_rows(session: Session) -> list[tuple[int, str, str | None]]:
    chunks = Chunk.objects.filter(session=session).order_by("sequence")
    return list(chunks.values_list("sequence", "status", "key_id"))


def test_no_archive_holds_a_run_of_the_recorded_bytes(api_client, user, key_a, archive_path):
    uploads = [typed_text(40_000), random_bytes(40_000)]
    uploaded = record_uploads(api_client, user, uploads)
    spooled = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    api_client.post(f"/api/v1/sessions/{spooled.id}/pipeline/pause")
    waiting = [typed_text(20_000), random_bytes(20_000)]
    for sequence, body in enumerate(waiting):
        assert put_chunk(api_client, spooled, sequence, body).status_code == 201
    streamed = stream_data()
    live = record_live_stream(api_client, user, streamed)

    backup(archive_path)

    manifest = manifest_of(archive_path)
    assert {entry["key_id"] for entry in manifest["chunks"]} == {"A"}
    assert [chunk.status for chunk in Chunk.objects.filter(session=spooled)] == ["received"] * 2
    (tail,) = [entry["stream_tail"] for entry in manifest["sessions"] if entry["stream_tail"]]
    assert (tail["member"], tail["size"], tail["key_id"]) == (
        f"streams/{live.id}/tail.A.sealed",
        5000,
        "A",
    )
    # Every 64-byte run of the input holds a BLOCK-byte run that starts at a multiple of BLOCK,
    # so an archive without any of those holds no 64-byte run of the input either.
    blocks = aligned_blocks(b"".join([*uploads, *waiting, streamed]))
    assert blocks_found(archive_path.read_bytes(), blocks) == 0
    assert blocks_found(decompressed(archive_path), blocks) == 0
    assert {entry["id"] for entry in manifest["sessions"]} == {
        str(session.id) for session in (uploaded, spooled, live)
    }


def test_a_backup_under_key_a_restores_under_key_a_with_b_active(
    api_client, user, key_a, archive_path, settings
):
    uploaded = record_uploads(api_client, user, [typed_text(40_000), random_bytes(30_000)])
    streamed = stream_data()
    live = record_live_stream(api_client, user, streamed)
    before = {session.id: seen(api_client, session.id) for session in (uploaded, live)}
    backup(archive_path)
    wipe(api_client, [uploaded, live])
    keys(settings, LINE_A, LINE_B, active="B")

    output = restore(archive_path)

    assert "restored 2 sessions" in output
    assert {s.id: seen(api_client, s.id) for s in (uploaded, live)} == before
    assert chunk_rows(uploaded) == [(0, "stored", "A"), (1, "stored", "A")]
    assert chunk_rows(live) == [(0, "stored", "A"), (1, "stored", "A")]
    assert all(".A." in chunk.storage_key for chunk in Chunk.objects.all())
    live.refresh_from_db()
    stream = session_stream(session_id=live.id, chunk_size=live.chunk_size)
    assert stream.segment_key_id(sequence=2, part=live.stream_part) == "A"
    assert post_stream(api_client, live, typed_text(100)).status_code == 200
    assert api_client.post(f"/api/v1/sessions/{live.id}/stop").status_code == 200
    wait_until_settled(live)
    recording = body_of(api_client.get(f"/api/v1/sessions/{live.id}/recording"))
    assert recording == streamed + typed_text(100)
    assert chunk_rows(live)[2] == (2, "stored", "B")


def test_a_restore_without_the_key_is_refused_before_anything_is_written(
    api_client, user, key_a, archive_path, settings
):
    sessions = [
        record_uploads(api_client, user, [typed_text(20_000)]),
        record_live_stream(api_client, user, stream_data()),
    ]
    backup(archive_path)
    wipe(api_client, sessions)
    keys(settings, LINE_B, active="B")

    with pytest.raises(CommandError) as refused:
        restore(archive_path)

    message = str(refused.value)
    assert "sealed under key 'A', which is not configured" in message
    assert "add it to LUCID_ENCRYPTION_KEYS_FILE (or LUCID_ENCRYPTION_KEYS)" in message
    assert LINE_A.partition(":")[2] not in message
    assert Session.objects.count() == 0
    assert Chunk.objects.count() == 0
    assert stored_files() == []


@pytest.mark.parametrize("part", ["chunk", "stream tail"])
def test_a_flipped_byte_in_a_sealed_member_is_reported_as_damage(
    api_client, user, key_a, archive_path, part
):
    live = record_live_stream(api_client, user, stream_data())
    backup(archive_path)
    wipe(api_client, [live])
    manifest = manifest_of(archive_path)
    name = {
        "chunk": manifest["chunks"][1]["member"],
        "stream tail": manifest["sessions"][0]["stream_tail"]["member"],
    }[part]
    assert name in (f"chunks/{live.id}/000000000001.A.zstd", f"streams/{live.id}/tail.A.sealed")
    member_flipped(archive_path, name)

    with pytest.raises(CommandError) as damaged:
        restore(archive_path, "--dry-run")

    assert f"is damaged: member '{name}' fails authentication under key 'A'" in str(damaged.value)
    assert "Nothing was restored" in str(damaged.value)
    with pytest.raises(CommandError, match="fails authentication"):
        restore(archive_path)
    assert Session.objects.count() == 0
    assert stored_files() == []


def test_an_archive_written_before_keys_existed_still_restores(api_client, user, archive_path):
    uploaded = record_uploads(api_client, user, [typed_text(20_000), random_bytes(9000)])
    live = record_live_stream(api_client, user, stream_data())
    before = {session.id: seen(api_client, session.id) for session in (uploaded, live)}
    backup(archive_path)
    members = archive_members(archive_path)
    manifest = json.loads(members[-1][1])
    for entry in manifest["chunks"]:
        del entry["key_id"]
    for entry in manifest["sessions"]:
        if entry["stream_tail"]:
            del entry["stream_tail"]["key_id"]
    archive_write(archive_path, [*members[:-1], ("manifest.json", json.dumps(manifest).encode())])
    wipe(api_client, [uploaded, live])

    assert "restored 2 sessions" in restore(archive_path)

    assert {s.id: seen(api_client, s.id) for s in (uploaded, live)} == before
    assert set(Chunk.objects.values_list("key_id", flat=True)) == {None}
    assert f"streams/{live.id}/tail.raw" in dict(members)


def test_an_incremental_backup_archives_again_a_chunk_sealed_under_another_key(
    api_client, user, key_a, tmp_path, settings
):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")
    body = random_bytes(20_000)
    assert put_chunk(api_client, session, 0, body).status_code == 201
    base, increment = tmp_path / "base.tar.zst", tmp_path / "increment.tar.zst"
    backup(base)
    keys(settings, LINE_A, LINE_B, active="B")
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/resume")
    wait_until_settled(session)
    assert chunk_rows(session) == [(0, "stored", "B")]

    backup(increment, "--incremental", str(base))

    (held,) = manifest_of(base)["chunks"]
    (again,) = manifest_of(increment)["chunks"]
    assert (held["stored_sha256"], held["algorithm"], held["key_id"]) == (
        again["stored_sha256"],
        "none",
        "A",
    )
    assert (again["member"], again["key_id"]) == (f"chunks/{session.id}/000000000000.B.none", "B")
    assert "in_base" not in again
    wipe(api_client, [session])
    restore(increment)
    assert body_of(download(api_client, session, 0)) == body


def test_repair_leaves_healthy_sealed_chunks_alone(api_client, user, key_a, archive_path):
    record_uploads(api_client, user, [typed_text(40_000), random_bytes(30_000)])
    live = record_live_stream(api_client, user, random_bytes(2 * CHUNK_SIZE + 10))
    api_client.post(f"/api/v1/sessions/{live.id}/stop")
    wait_until_settled(live)
    backup(archive_path)

    output = restore(archive_path, "--repair")

    assert "5 chunks checked, nothing to repair; nothing to do" in output


def sealed_session_damaged(client, owner, archive_path, settings, how: str) -> Session:
    """A session of two chunks sealed under A, backed up; then B is made active and the file
    of chunk 1 damaged `how`."""
    session = record_uploads(client, owner, BODIES)
    backup(archive_path)
    keys(settings, LINE_A, LINE_B, active="B")
    damage_stored(Chunk.objects.get(session=session, sequence=1), how)
    return session


def assert_repaired_under_a(client, session: Session) -> None:
    assert chunk_rows(session) == [(0, "stored", "A"), (1, "stored", "A")]
    assert [body_of(download(client, session, n)) for n in (0, 1)] == BODIES
    with get_chunk_store().open(Chunk.objects.get(session=session, sequence=1).storage_key) as file:
        assert read_header(file) == "A"


def test_repair_brings_back_a_sealed_chunk_a_read_found_damaged(
    api_client, user, key_a, archive_path, settings
):
    session = sealed_session_damaged(api_client, user, archive_path, settings, "flipped")
    damaged = download(api_client, session, 1)
    assert (damaged.status_code, damaged.json()["code"]) == (500, "chunk_damaged")

    output = restore(archive_path, "--repair")

    assert f"repaired session {session.id} chunk 1 (authentication failed)" in output
    assert_repaired_under_a(api_client, session)


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_repair_finds_a_cut_or_missing_sealed_file_nobody_marked(
    api_client, user, key_a, archive_path, settings, how
):
    session = sealed_session_damaged(api_client, user, archive_path, settings, how)
    assert chunk_rows(session) == [(0, "stored", "A"), (1, "stored", "A")]

    output = restore(archive_path, "--repair")

    problem = {"truncated": "not a whole sealed file", "deleted": "file missing"}[how]
    assert f"repaired session {session.id} chunk 1 ({problem}" in output
    assert_repaired_under_a(api_client, session)
