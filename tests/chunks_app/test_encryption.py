"""Encryption at rest through the API: nothing kept holds the input, reads decrypt, and a chunk
whose sealed bytes were changed, moved or read with another key is `damaged`."""

import hashlib
import io
import logging
import re

import pytest
from django.core.management import CommandError, call_command

from chunks_app.models import Chunk
from chunks_app.spool import get_spool, session_stream
from chunks_app.storage import get_chunk_store
from core.choices import AuditAction
from core.encryption import generate_key_line, record_boundary
from core.models import AuditEntry
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    damage_spooled,
    damage_stored,
    download,
    post_stream,
    put_chunk,
    random_bytes,
    record_stored,
    wait_until_settled,
)
from tests.support.faults import overwrite, read_around, remains, swap

pytestmark = pytest.mark.django_db(transaction=True)

LINE_A = generate_key_line("A")
LINE_B = generate_key_line("B")
MATERIALS = [line.split(":", 1)[1] for line in (LINE_A, LINE_B)]
WINDOW = 64
RECORDING_SIZE = 3 * CHUNK_SIZE + 10_000
APPEND_SIZE = 20_000
AUTHENTICATION_FAILED = "authentication failed"


def typed_text(size: int) -> bytes:
    """Compressible text like a terminal session's, its lines numbered."""
    lines = (
        b"%06d root@db-1:~# mysql -u admin -p'correct horse %d' shop\n" % (n, n % 7)
        for n in range(size // 40 + 1)
    )
    return b"".join(lines)[:size]


INPUTS = {"compressible": typed_text, "incompressible": random_bytes}


def keys_enable(settings) -> None:
    """Keys A and B configured, A active."""
    settings.LUCID_ENCRYPTION_KEYS = f"{LINE_A},{LINE_B}"
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = "A"


@pytest.fixture
def keys(settings):
    keys_enable(settings)
    return settings


def where(store) -> str:
    return store.location.rstrip("/")


def runs_of(data: bytes) -> list[str]:
    """The kept files or objects holding any 64-byte run of `data`, read around the spool and
    the chunk store, as "<location>/<name>@<offset of the first found>".

    Every window of each file, at every offset, is looked up among every window of `data`."""
    windows = {data[start : start + WINDOW] for start in range(len(data) - WINDOW + 1)}
    found = []
    for store in (get_spool(), get_chunk_store()):
        for name in remains(store):
            if name.endswith(" (unfinished)"):
                continue
            content = read_around(store, name)
            for start in range(len(content) - WINDOW + 1):
                if content[start : start + WINDOW] in windows:
                    found.append(f"{where(store)}/{name}@{start}")
                    break
    return found


def ingest(client, session: Session, data: bytes, *, how: str) -> None:
    """`data` into the session: as chunks of CHUNK_SIZE, or as stream appends of APPEND_SIZE."""
    if how == "upload":
        for sequence, start in enumerate(range(0, len(data), CHUNK_SIZE)):
            piece = data[start : start + CHUNK_SIZE]
            assert put_chunk(client, session, sequence, piece).status_code == 201
    else:
        for start in range(0, len(data), APPEND_SIZE):
            response = post_stream(client, session, data[start : start + APPEND_SIZE])
            assert response.status_code == 200


def pipeline(client, session: Session, action: str) -> None:
    assert client.post(f"/api/v1/sessions/{session.id}/pipeline/{action}").status_code == 200


def stop(client, session: Session) -> None:
    assert client.post(f"/api/v1/sessions/{session.id}/stop").status_code == 200


def chunk_of(session: Session, sequence: int) -> Chunk:
    return Chunk.objects.get(session=session, sequence=sequence)


@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("how", ["upload", "stream"])
def test_no_spooled_or_stored_file_holds_a_64_byte_run_of_the_input(
    api_client, recording, keys, kind, how
):
    data = INPUTS[kind](RECORDING_SIZE)
    pipeline(api_client, recording, "pause")

    ingest(api_client, recording, data, how=how)

    assert remains(get_spool()) and not remains(get_chunk_store())
    assert runs_of(data) == []
    pipeline(api_client, recording, "resume")
    stop(api_client, recording)
    chunks = wait_until_settled(recording)
    assert [chunk.status for chunk in chunks] == ["stored"] * 4
    assert {chunk.algorithm for chunk in chunks} == {"zstd" if kind == "compressible" else "none"}
    assert {chunk.key_id for chunk in chunks} == {"A"}
    assert len(remains(get_chunk_store())) == 4
    assert runs_of(data) == []


def test_a_partly_filled_stream_tail_holds_no_run_of_its_bytes(api_client, recording, keys):
    data = typed_text(CHUNK_SIZE + 3 * APPEND_SIZE)

    ingest(api_client, recording, data, how="stream")

    chunks = wait_until_settled(recording)
    assert [(chunk.sequence, chunk.key_id) for chunk in chunks] == [(0, "A")]
    recording.refresh_from_db()
    stream = session_stream(session_id=recording.pk, chunk_size=CHUNK_SIZE)
    assert stream.segment_key_id(sequence=1, part=recording.stream_part) == "A"
    segments = [name for name in remains(get_spool()) if "/stream-" in name]
    assert segments
    assert all(f"/stream-{1:012d}" in name and name.endswith(".sealed") for name in segments)
    assert runs_of(data) == []


@pytest.mark.parametrize("how", ["upload", "stream"])
def test_without_keys_the_same_search_finds_the_input_in_the_spool_and_the_store(
    api_client, recording, how
):
    data = random_bytes(RECORDING_SIZE)
    pipeline(api_client, recording, "pause")
    ingest(api_client, recording, data, how=how)

    assert runs_of(data)
    pipeline(api_client, recording, "resume")
    stop(api_client, recording)
    assert {chunk.key_id for chunk in wait_until_settled(recording)} == {None}
    assert any(found.startswith(f"{where(get_chunk_store())}/") for found in runs_of(data))


@pytest.fixture(params=["spool", "store"])
def sealed_recording(request, api_client, recording, keys) -> tuple[Session, bytes]:
    """A stopped session of four chunks under key A, kept in the spool or processed."""
    data = typed_text(RECORDING_SIZE)
    if request.param == "spool":
        pipeline(api_client, recording, "pause")
    ingest(api_client, recording, data, how="stream")
    stop(api_client, recording)
    if request.param == "spool":
        chunks, expected = list(Chunk.objects.filter(session=recording)), "received"
    else:
        chunks, expected = wait_until_settled(recording), "stored"
    assert {(chunk.status, chunk.key_id) for chunk in chunks} == {(expected, "A")}
    return recording, data


def test_a_sealed_chunk_downloads_whole_and_by_range(api_client, sealed_recording):
    session, data = sealed_recording
    piece = data[CHUNK_SIZE : 2 * CHUNK_SIZE]

    whole = download(api_client, session, 1)
    ranged = download(api_client, session, 1, range="bytes=1000-60999")

    assert (whole.status_code, body_of(whole)) == (200, piece)
    assert whole["ETag"] == f'"{hashlib.sha256(piece).hexdigest()}"'
    assert (ranged.status_code, body_of(ranged)) == (206, piece[1000:61000])


def test_a_sealed_recording_downloads_whole_and_by_range_across_chunk_borders(
    api_client, sealed_recording
):
    session, data = sealed_recording
    url = f"/api/v1/sessions/{session.id}/recording"
    start, end = CHUNK_SIZE - 100, 3 * CHUNK_SIZE + 100

    whole = api_client.get(url)
    ranged = api_client.get(url, HTTP_RANGE=f"bytes={start}-{end}")

    assert (whole.status_code, body_of(whole)) == (200, data)
    assert (ranged.status_code, body_of(ranged)) == (206, data[start : end + 1])


def test_the_manifest_of_a_sealed_recording_has_the_hashes_of_the_raw_bytes(
    api_client, sealed_recording
):
    session, data = sealed_recording

    manifest = api_client.get(f"/api/v1/sessions/{session.id}/manifest").json()

    pieces = [data[start : start + CHUNK_SIZE] for start in range(0, len(data), CHUNK_SIZE)]
    assert manifest["chunks"] == [
        {"sequence": sequence, "size": len(piece), "sha256": hashlib.sha256(piece).hexdigest()}
        for sequence, piece in enumerate(pieces)
    ]


@pytest.mark.parametrize(("configured", "key_id"), [(True, "A"), (False, None)])
def test_a_chunk_shows_the_key_it_is_kept_under(
    api_client, recording, settings, configured, key_id
):
    if configured:
        keys_enable(settings)
    put_chunk(api_client, recording, 0, typed_text(30_000))
    wait_until_settled(recording)

    listed = api_client.get(f"/api/v1/sessions/{recording.id}/chunks").json()["results"]
    detail = api_client.get(f"/api/v1/sessions/{recording.id}/chunks/0").json()

    assert [chunk["key_id"] for chunk in listed] == [key_id]
    assert detail["key_id"] == key_id


@pytest.mark.parametrize(("configured", "encoding"), [(True, None), (False, "zstd")])
def test_stored_zstd_bytes_pass_through_only_when_not_encrypted(
    api_client, recording, settings, configured, encoding
):
    if configured:
        keys_enable(settings)
    body = typed_text(60_000)
    put_chunk(api_client, recording, 0, body)
    (chunk,) = wait_until_settled(recording)
    assert chunk.algorithm == "zstd"

    response = download(api_client, recording, 0, accept_encoding="zstd")

    assert response.status_code == 200
    assert response.get("Content-Encoding") == encoding
    if encoding is None:
        assert body_of(response) == body
    else:
        assert len(body_of(response)) == chunk.compressed_size


@pytest.fixture
def pair(api_client, user, keys) -> tuple[Session, Session]:
    """Two stopped sessions, each of two incompressible chunks of one size, under key A."""
    bodies = [[random_bytes(30_000) for _ in range(2)] for _ in range(2)]
    sessions = tuple(
        record_stored(api_client, owner=user, codec="none", bodies=session_bodies)
        for session_bodies in bodies
    )
    sizes = {get_chunk_store().size(chunk.storage_key) for chunk in Chunk.objects.all()}
    assert len(sizes) == 1
    assert {chunk.key_id for chunk in Chunk.objects.all()} == {"A"}
    return sessions


def _flip(first: Session, second: Session, settings) -> list[tuple[Session, int]]:
    damage_stored(chunk_of(first, 1), "flipped")
    return [(first, 1)]


def _swap_in_session(first: Session, second: Session, settings) -> list[tuple[Session, int]]:
    swap(get_chunk_store(), chunk_of(first, 0).storage_key, chunk_of(first, 1).storage_key)
    return [(first, 0), (first, 1)]


def _copy_from_other_session(
    first: Session, second: Session, settings
) -> list[tuple[Session, int]]:
    store = get_chunk_store()
    overwrite(
        store, chunk_of(first, 1).storage_key, read_around(store, chunk_of(second, 1).storage_key)
    )
    return [(first, 1)]


def _other_key_material(first: Session, second: Session, settings) -> list[tuple[Session, int]]:
    settings.LUCID_ENCRYPTION_KEYS = generate_key_line("A")
    return [(session, sequence) for session in (first, second) for sequence in (0, 1)]


DAMAGES = {
    "flipped-byte": _flip,
    "swapped-in-session": _swap_in_session,
    "copied-from-other-session": _copy_from_other_session,
    "other-key-material": _other_key_material,
}


@pytest.fixture(params=list(DAMAGES))
def damaged(request, pair, settings) -> list[tuple[Session, int]]:
    """The chunks of `pair` a damage leaves unreadable."""
    return DAMAGES[request.param](*pair, settings)


def assert_chunk_damaged(response, sequence: int) -> None:
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["code"], body["sequence"]) == ("chunk_damaged", sequence)
    assert f"Chunk {sequence} is damaged ({AUTHENTICATION_FAILED})" in body["message"]


def assert_marked(damaged: list[tuple[Session, int]], *, actor: str) -> None:
    """Exactly the `damaged` chunks are marked, each audited once."""
    marked = Chunk.objects.filter(status="damaged").order_by("session__created_at", "sequence")
    assert [(chunk.session_id, chunk.sequence, chunk.error) for chunk in marked] == [
        (session.pk, sequence, AUTHENTICATION_FAILED) for session, sequence in damaged
    ]
    entries = AuditEntry.objects.filter(action=AuditAction.CHUNK_DAMAGED)
    assert sorted((entry.session_id, entry.sequence, entry.actor) for entry in entries) == sorted(
        (session.pk, sequence, actor) for session, sequence in damaged
    )


def verify_failing() -> str:
    out = io.StringIO()
    with pytest.raises(CommandError, match="problems found"):
        call_command("verify", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_damaged_sealed_chunk_answers_chunk_damaged_on_download(api_client, damaged):
    for session, sequence in damaged:
        assert_chunk_damaged(download(api_client, session, sequence), sequence)

    assert_marked(damaged, actor="operator")


def test_a_damaged_sealed_chunk_is_found_by_verify(damaged):
    output = verify_failing()

    reported = re.findall(r"^DAMAGED (\S+) chunk (\d+): (.*)$", output, re.MULTILINE)
    assert sorted(reported) == sorted(
        (str(session.pk), str(sequence), AUTHENTICATION_FAILED) for session, sequence in damaged
    )
    assert_marked(damaged, actor="command:verify")


@pytest.mark.parametrize("how", ["upload", "stream"])
def test_a_flipped_byte_in_a_sealed_spool_file_is_never_served(api_client, recording, keys, how):
    pipeline(api_client, recording, "pause")
    ingest(api_client, recording, random_bytes(CHUNK_SIZE + 5000), how=how)
    damage_spooled(chunk_of(recording, 0), "flipped")

    response = download(api_client, recording, 0, range="bytes=0-9")

    assert_chunk_damaged(response, 0)
    assert_marked([(recording, 0)], actor="operator")


@pytest.mark.filesystem_only(
    "a stream segment file is sealed one record per append; a segment object is sealed whole"
)
def test_a_sealed_spool_file_cut_at_a_record_boundary_is_caught_by_its_size(
    api_client, recording, keys
):
    pipeline(api_client, recording, "pause")
    ingest(api_client, recording, random_bytes(CHUNK_SIZE), how="stream")
    path = get_spool().root / chunk_of(recording, 0).spool_key
    with path.open("rb") as segment:
        boundary = record_boundary(segment, position=2 * APPEND_SIZE)
    with path.open("r+b") as segment:
        segment.truncate(boundary)

    response = download(api_client, recording, 0)

    assert response.status_code == 500
    assert response.json()["code"] == "chunk_damaged"
    error = chunk_of(recording, 0).error
    assert error == f"truncated in the spool: {2 * APPEND_SIZE} of {CHUNK_SIZE} bytes"


@pytest.fixture
def under_a_removed_key(api_client, user, keys, settings) -> Session:
    """A stopped session stored under key A; then only key B is configured."""
    session = record_stored(api_client, owner=user, codec="zstd", bodies=[typed_text(30_000)])
    settings.LUCID_ENCRYPTION_KEYS = LINE_B
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = "B"
    return session


def assert_key_missing(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["code"], body["key_id"]) == ("encryption_key_missing", "A")
    assert "key 'A', which is not configured" in body["message"]


def test_a_chunk_under_a_key_no_longer_configured_answers_503_and_is_not_damaged(
    api_client, under_a_removed_key
):
    session = under_a_removed_key

    assert_key_missing(download(api_client, session, 0))
    assert_key_missing(api_client.get(f"/api/v1/sessions/{session.id}/recording"))

    assert chunk_of(session, 0).status == "stored"
    assert not AuditEntry.objects.filter(action=AuditAction.CHUNK_DAMAGED).exists()


def test_verify_reports_a_chunk_under_a_key_no_longer_configured_without_marking_it(
    under_a_removed_key,
):
    output = verify_failing()

    assert (
        f"DAMAGED {under_a_removed_key.id} chunk 0: unreadable: Data is encrypted under key 'A', "
        "which is not configured." in output
    )
    assert chunk_of(under_a_removed_key, 0).status == "stored"
    assert not AuditEntry.objects.filter(action=AuditAction.CHUNK_DAMAGED).exists()


def test_a_stream_segment_begun_without_keys_stays_plain_and_the_next_is_sealed(
    api_client, recording, settings
):
    data = random_bytes(2 * CHUNK_SIZE + 5000)
    pipeline(api_client, recording, "pause")
    post_stream(api_client, recording, data[:1000])
    keys_enable(settings)

    post_stream(api_client, recording, data[1000:])

    chunks = Chunk.objects.filter(session=recording).order_by("sequence")
    assert [(chunk.sequence, chunk.key_id) for chunk in chunks] == [(0, None), (1, "A")]
    assert [chunk.spool_key.rpartition(".")[2] for chunk in chunks] == ["raw", "sealed"]
    recording.refresh_from_db()
    stream = session_stream(session_id=recording.pk, chunk_size=CHUNK_SIZE)
    assert stream.segment_key_id(sequence=2, part=recording.stream_part) == "A"
    assert runs_of(data[CHUNK_SIZE:]) == []
    assert body_of(download(api_client, recording, 0)) == data[:CHUNK_SIZE]
    assert body_of(download(api_client, recording, 1)) == data[CHUNK_SIZE : 2 * CHUNK_SIZE]
    pipeline(api_client, recording, "resume")
    stop(api_client, recording)
    assert {chunk.key_id for chunk in wait_until_settled(recording)} == {"A"}
    assert runs_of(data) == []
    assert body_of(api_client.get(f"/api/v1/sessions/{recording.id}/recording")) == data


def shown_by(response) -> str:
    """Everything a response shows: its status, headers and body."""
    body = body_of(response).decode(errors="replace")
    return f"{response.status_code} {dict(response.items())} {body}"


def test_no_response_log_record_or_admin_page_shows_key_material(
    api_client, anonymous_client, clients, recording, keys, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    chunks = f"/api/v1/sessions/{recording.id}/chunks"
    shown = [shown_by(put_chunk(api_client, recording, n, typed_text(30_000))) for n in (0, 1)]
    wait_until_settled(recording)
    admin = clients["superuser"]
    chunk = chunk_of(recording, 0)
    shown += [
        shown_by(response)
        for response in (
            download(api_client, recording, 0),
            download(api_client, recording, 0, range="bytes=5-10"),
            api_client.get(f"/api/v1/sessions/{recording.id}/recording"),
            api_client.get(f"/api/v1/sessions/{recording.id}/manifest"),
            api_client.get(chunks),
            api_client.get(f"{chunks}/0"),
            anonymous_client.get("/health"),
            admin.get(f"/admin/chunks_app/chunk/{chunk.pk}/change/"),
            admin.get("/admin/chunks_app/chunk/"),
            admin.get(f"/admin/sessions_app/session/{recording.pk}/change/"),
        )
    ]
    damage_stored(chunk_of(recording, 1), "flipped")
    shown.append(shown_by(download(api_client, recording, 1)))
    settings.LUCID_ENCRYPTION_KEYS = LINE_B
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = "B"
    shown.append(shown_by(download(api_client, recording, 0)))

    statuses = [text.split(" ", 1)[0] for text in shown]
    assert statuses == ["201", "201", "200", "206", *["200"] * 8, "500", "503"]
    shown += [f"{record.getMessage()} {record.__dict__}" for record in caplog.records]
    for material in MATERIALS:
        assert [text for text in shown if material in text] == []
