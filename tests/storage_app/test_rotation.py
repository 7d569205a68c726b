"""Key rotation: every chunk and open stream tail rewritten under one key, none lost."""

import io
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from chunks_app.models import Chunk
from chunks_app.spool import get_spool, session_stream
from chunks_app.storage import get_chunk_store
from core.encryption import generate_key_line
from sessions_app.models import Session
from storage_app.cleanup import orphans_clean, orphans_find
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    KIB,
    body_of,
    download,
    post_stream,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.support.client import API, login, session_start, wait_until_stored
from tests.support.client import put_chunk as put_chunk_served
from tests.support.faults import overwrite, read_around, remains
from tests.support.processes import BIN, REPO, manage
from tests.support.server import served

KEYS = {key_id: generate_key_line(key_id) for key_id in ("A", "B")}
RUN = 32
KILLED_CHUNKS = 300
KILL_AFTER = KILLED_CHUNKS // 3
ROTATION_SECONDS = 120


def use_keys(settings, *key_ids: str, active: str | None) -> None:
    settings.LUCID_ENCRYPTION_KEYS = ",".join(KEYS[key_id] for key_id in key_ids)
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = active or ""


def rotate(*arguments: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def kept_files() -> dict[str, bytes]:
    """Every file or object in the spool and the chunk store, read around them."""
    return {
        f"{store.location.rstrip('/')}/{name}": read_around(store, name)
        for store in (get_spool(), get_chunk_store())
        for name in remains(store)
        if not name.endswith(" (unfinished)")
    }


def files_holding_a_run_of(inputs: list[bytes]) -> list[str]:
    """The kept files holding 64 bytes in a row of any of `inputs`.

    Such a run always covers one of the input's 32-byte blocks at a multiple of 32, so the
    files are those holding one of these blocks anywhere.
    """
    blocks = {data[start : start + RUN] for data in inputs for start in range(0, len(data), RUN)}
    blocks = {block for block in blocks if len(block) == RUN}
    holding = []
    for name, content in kept_files().items():
        windows = {content[start : start + RUN] for start in range(len(content) - RUN + 1)}
        if windows & blocks:
            holding.append(name)
    return holding


def downloads(client, session: Session) -> bytes:
    chunks = Chunk.objects.filter(session=session).order_by("sequence")
    bodies = []
    for chunk in chunks:
        response = download(client, session, chunk.sequence)
        assert response.status_code == 200, response.content
        bodies.append(body_of(response))
    return b"".join(bodies)


def key_ids() -> set[str | None]:
    return set(Chunk.objects.values_list("key_id", flat=True))


def kept_names() -> set[str]:
    """Every file name a chunk row points at (its stored object, else its spool file)."""
    return {
        f"{'store' if chunk.storage_key else 'spool'}:{chunk.storage_key or chunk.spool_key}"
        for chunk in Chunk.objects.all()
    }


def name_exists(name: str) -> bool:
    area, _, key = name.partition(":")
    return (get_spool() if area == "spool" else get_chunk_store()).exists(key)


def recordings(api_client, user) -> dict[Session, bytes]:
    """What each kind of kept chunk and open tail comes from, by session, with what was sent:
    uploads stored and still spooled (paused pipeline), streams stored and still spooled, with
    open tails."""
    stored = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    spooled = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    streamed = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    streamed_spooled = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    for session in (spooled, streamed_spooled):
        api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")
    sent = {
        stored: [screen_like(30_000), random_bytes(20_000)],
        spooled: [random_bytes(10_000), screen_like(12_000)],
        streamed: [random_bytes(2 * CHUNK_SIZE + 10_000)],
        streamed_spooled: [screen_like(CHUNK_SIZE), random_bytes(5_000)],
    }
    for session in (stored, spooled):
        for sequence, body in enumerate(sent[session]):
            assert put_chunk(api_client, session, sequence, body).status_code == 201
    for session in (streamed, streamed_spooled):
        for body in sent[session]:
            assert post_stream(api_client, session, body).status_code == 200
    wait_until_settled(stored)
    wait_until_settled(streamed)
    return {session: b"".join(bodies) for session, bodies in sent.items()}


def finish(api_client, sessions) -> None:
    """Resume every pipeline, stop every session and wait until every chunk is stored."""
    for session in sessions:
        api_client.post(f"/api/v1/sessions/{session.id}/pipeline/resume")
        assert api_client.post(f"/api/v1/sessions/{session.id}/stop").status_code == 200
        assert {chunk.status for chunk in wait_until_settled(session)} == {"stored"}


@pytest.mark.django_db(transaction=True)
def test_plaintext_is_encrypted_under_a_key_and_reads_byte_for_byte(api_client, user, settings):
    settings.LUCID_ORPHAN_GRACE_MINUTES = 0
    sent = recordings(api_client, user)
    names_before = kept_names()
    assert files_holding_a_run_of(list(sent.values()))
    assert {chunk.status for chunk in Chunk.objects.all()} == {"stored", "received"}
    use_keys(settings, "A", active="A")

    output = rotate("--to", "A")
    orphans_clean(report=orphans_find(now=timezone.now()), dry_run=False)

    assert key_ids() == {"A"}
    assert "as plaintext" in output
    for session, data in sent.items():
        readable = downloads(api_client, session)
        assert readable and data.startswith(readable)
    assert not any(name_exists(name) for name in names_before)
    assert files_holding_a_run_of(list(sent.values())) == []
    finish(api_client, sent)
    for session, data in sent.items():
        assert downloads(api_client, session) == data
    assert key_ids() == {"A"}


@pytest.mark.django_db(transaction=True)
def test_after_a_rotation_from_a_to_b_key_a_can_go(api_client, user, settings):
    use_keys(settings, "A", active="A")
    sent = recordings(api_client, user)
    assert key_ids() == {"A"}
    use_keys(settings, "A", "B", active="B")

    output = rotate("--to", "B")
    use_keys(settings, "B", active="B")

    assert key_ids() == {"B"}
    assert "Keys no chunk needs any more: A." in output
    assert "  B: 7\n" in output
    finish(api_client, sent)
    for session, data in sent.items():
        assert downloads(api_client, session) == data


@pytest.mark.django_db(transaction=True)
def test_the_open_stream_tail_is_resealed_and_the_stream_goes_on(api_client, recording, settings):
    use_keys(settings, "A", "B", active="A")
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/pause")
    first, second = random_bytes(CHUNK_SIZE + 10_000), random_bytes(CHUNK_SIZE + 7_000)
    post_stream(api_client, recording, first)

    output = rotate("--to", "B")

    recording.refresh_from_db()
    tail = session_stream(session_id=recording.id, chunk_size=CHUNK_SIZE)
    assert tail.segment_key_id(sequence=1, part=recording.stream_part) == "B"
    assert "resealed 1 open stream tails under key B" in output
    assert "warning: key B is not the active key; new data is still encrypted under key A" in (
        output
    )
    assert post_stream(api_client, recording, second).json()["chunks"] == [1]
    assert api_client.post(f"/api/v1/sessions/{recording.id}/stop").status_code == 200
    keys = dict(Chunk.objects.filter(session=recording).values_list("sequence", "key_id"))
    assert keys == {0: "B", 1: "B", 2: "A"}
    assert downloads(api_client, recording) == first + second
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/resume")
    assert {chunk.status for chunk in wait_until_settled(recording)} == {"stored"}
    assert downloads(api_client, recording) == first + second


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_counts_by_key_and_changes_nothing(api_client, recording, settings):
    put_chunk(api_client, recording, 0, random_bytes(20_000))
    wait_until_settled(recording)
    use_keys(settings, "A", "B", active="A")
    put_chunk(api_client, recording, 1, random_bytes(30_000))
    streaming = SessionFactory(owner=recording.owner, status="recording", chunk_size=CHUNK_SIZE)
    post_stream(api_client, streaming, random_bytes(1_000))
    wait_until_settled(recording)
    files, rows = kept_files(), list(Chunk.objects.order_by("pk").values())

    output = rotate("--to", "B", "--dry-run")

    assert "would rewrite 1 chunks (20000 bytes, 0.0 MiB) kept as plaintext" in output
    assert "would rewrite 1 chunks (30000 bytes, 0.0 MiB) kept under key A" in output
    assert "would reseal 1 open stream tails under key B" in output
    assert "  plaintext: 1\n  A: 1\n" in output
    assert "Keys no chunk needs" not in output
    assert kept_files() == files
    assert list(Chunk.objects.order_by("pk").values()) == rows


@pytest.mark.django_db(transaction=True)
def test_a_damaged_chunk_is_marked_and_skipped_and_the_rest_is_rotated(
    api_client, recording, settings
):
    use_keys(settings, "A", "B", active="A")
    bodies = [random_bytes(10_000) for _ in range(3)]
    for sequence, body in enumerate(bodies):
        put_chunk(api_client, recording, sequence, body)
    damaged = wait_until_settled(recording)[1]
    content = bytearray(read_around(get_chunk_store(), damaged.storage_key))
    content[-20] ^= 1
    overwrite(get_chunk_store(), damaged.storage_key, bytes(content))

    output = rotate("--to", "B")

    damaged.refresh_from_db()
    assert (damaged.status, damaged.error, damaged.key_id) == (
        "damaged",
        "authentication failed",
        "A",
    )
    assert f"skipped damaged chunk {recording.id}#1: authentication failed" in output
    assert "  A: 1 (1 damaged)\n  B: 2\n" in output
    assert "Keys no chunk needs" not in output
    for sequence in (0, 2):
        assert body_of(download(api_client, recording, sequence)) == bodies[sequence]


@pytest.mark.django_db(transaction=True)
def test_chunks_under_a_key_already_removed_fail_the_run_and_stay_as_they_are(
    api_client, recording, settings
):
    use_keys(settings, "A", active="A")
    body = random_bytes(10_000)
    put_chunk(api_client, recording, 0, body)
    (chunk,) = wait_until_settled(recording)
    use_keys(settings, "B", active="B")

    with pytest.raises(CommandError, match="1 failures"):
        rotate("--to", "B")

    assert Chunk.objects.get(pk=chunk.pk).storage_key == chunk.storage_key
    use_keys(settings, "A", "B", active="B")
    assert body_of(download(api_client, recording, 0)) == body


@pytest.mark.django_db
def test_rotating_to_a_key_not_configured_fails_and_says_to_add_it(settings):
    use_keys(settings, "A", active="A")

    with pytest.raises(CommandError) as raised:
        rotate("--to", "C")

    assert "Key 'C' is not configured (keys configured: A). Add it to" in str(raised.value)


def _chunks_under(database: Path, key_id: str) -> int:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as connection:
        query = "SELECT count(*) FROM chunks_app_chunk WHERE key_id = ?"
        return connection.execute(query, (key_id,)).fetchone()[0]


def _killed_once_some_are_rewritten(env: dict[str, str], database: Path, log: Path) -> int:
    """Run `rotate_keys --to B`, SIGKILL it once KILL_AFTER chunks are under B; how many are."""
    with log.open("wb") as output:
        rotation = subprocess.Popen(
            [str(BIN / "python"), "manage.py", "rotate_keys", "--to", "B"],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + ROTATION_SECONDS
        while _chunks_under(database, "B") < KILL_AFTER:
            assert rotation.poll() is None, f"rotate_keys ended first:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"rotate_keys moved fewer than {KILL_AFTER} chunks"
            time.sleep(0.002)
        rotation.send_signal(signal.SIGKILL)
    finally:
        rotation.wait(timeout=ROTATION_SECONDS)
    assert rotation.returncode == -signal.SIGKILL
    return _chunks_under(database, "B")


@pytest.mark.e2e
def test_a_rotation_killed_halfway_then_run_again_leaves_everything_readable(tmp_path):
    keys = {"LUCID_ENCRYPTION_KEYS": f"{KEYS['A']},{KEYS['B']}", "LUCID_ENCRYPTION_ACTIVE_KEY": "A"}
    with served(tmp_path, **keys) as lucid:
        client = login(lucid.client())
        session_id = session_start(client, name="rotated", chunk_size=64 * KIB)
        bodies = [random_bytes(2 * KIB) for _ in range(KILLED_CHUNKS)]
        for sequence, body in enumerate(bodies):
            put_chunk_served(client, session_id, sequence, body)
        wait_until_stored(client, session_id, KILLED_CHUNKS, seconds=ROTATION_SECONDS)
        database = Path(lucid.env["LUCID_STORAGE_PATH"]) / "lucid.sqlite3"

        under_b_at_kill = _killed_once_some_are_rewritten(
            lucid.env, database, tmp_path / "rotation.log"
        )
        readable_at_kill = [
            client.fetch(f"{API}/sessions/{session_id}/chunks/{sequence}/download")
            for sequence in range(KILLED_CHUNKS)
        ]
        rerun = manage("rotate_keys", "--to", "B", env=lucid.env)
        cleanup = manage("cleanup", env={**lucid.env, "LUCID_ORPHAN_GRACE_MINUTES": "0"})

        assert 0 < under_b_at_kill < KILLED_CHUNKS
        assert readable_at_kill == bodies
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert f"  B: {KILLED_CHUNKS}\n" in rerun.stdout
        assert "warning: key B is not the active key" in rerun.stdout
        assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
        assert _chunks_under(database, "B") == KILLED_CHUNKS
        for sequence, body in enumerate(bodies):
            assert client.fetch(f"{API}/sessions/{session_id}/chunks/{sequence}/download") == body
        store = Path(lucid.env["LUCID_CHUNK_STORE_PATH"]) / session_id
        assert sorted(path.name for path in store.iterdir()) == [
            f"{sequence:012d}.B.none" for sequence in range(KILLED_CHUNKS)
        ]
