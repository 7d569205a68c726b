"""Damaged chunks: no wrong byte is ever served, and a chunk found damaged shows as `damaged`."""

import pytest

from chunks_app.models import Chunk
from chunks_app.selectors import ChunkDamaged
from chunks_app.services import chunk_mark_damaged
from core.choices import AuditAction
from core.counters import counters_read
from core.models import AuditEntry
from tests.chunks_app.helpers import (
    body_of,
    damage_spooled,
    damage_stored,
    download,
    put_chunk,
    random_bytes,
    record_stored,
    screen_like,
)
from tests.lucid.test_metrics import scrape
from tests.sessions_app.test_statistics import recount_session, recount_system
from tests.support.faults import DAMAGES

pytestmark = pytest.mark.django_db(transaction=True)

CODECS = ["zstd", "lz4", "gzip", "none"]
CHUNK_BYTES = 40_000
BODIES = [screen_like(CHUNK_BYTES, seed=sequence) for sequence in range(3)]
RECORDING = b"".join(BODIES)
CHUNK_REQUESTS = {
    "whole": {},
    "range": {"range": "bytes=100-199"},
    "passthrough": {"accept_encoding": "zstd, gzip"},
}


@pytest.fixture(params=CODECS)
def codec(request) -> str:
    return request.param


@pytest.fixture(params=list(DAMAGES))
def how(request) -> str:
    return request.param


@pytest.fixture
def recorded(api_client, user, codec):
    """A stopped session of three chunks of BODIES, stored with `codec`."""
    return record_stored(api_client, owner=user, codec=codec, bodies=BODIES)


def damage(session, sequence: int, how: str) -> None:
    damage_stored(Chunk.objects.get(session=session, sequence=sequence), how)


def get_recording(client, session, **headers):
    meta = {f"HTTP_{name.upper()}": value for name, value in headers.items()}
    return client.get(f"/api/v1/sessions/{session.id}/recording", **meta)


def assert_chunk_damaged(response, sequence: int) -> None:
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["code"], body["sequence"]) == ("chunk_damaged", sequence)
    assert f"Chunk {sequence} is damaged" in body["message"]


def assert_marked(session, sequence: int, how: str) -> None:
    chunk = Chunk.objects.get(session=session, sequence=sequence)
    assert chunk.status == "damaged"
    assert chunk.error.startswith(DAMAGES[how])
    entries = AuditEntry.objects.filter(session_id=session.pk, action=AuditAction.CHUNK_DAMAGED)
    assert [(entry.sequence, entry.detail["status"]) for entry in entries] == [(sequence, "stored")]


def aborted_body(response) -> bytes:
    """The bytes a streamed response gives before it breaks off at a damaged chunk."""
    received = bytearray()
    with pytest.raises(ChunkDamaged):
        for piece in response.streaming_content:
            received += piece
    return bytes(received)


@pytest.mark.parametrize("asked", list(CHUNK_REQUESTS))
def test_a_damaged_chunk_download_answers_chunk_damaged(api_client, recorded, how, asked):
    damage(recorded, 1, how)

    response = download(api_client, recorded, 1, **CHUNK_REQUESTS[asked])

    assert_chunk_damaged(response, 1)
    assert_marked(recorded, 1, how)


@pytest.mark.parametrize(
    ("damaged", "headers"),
    [
        (0, {}),
        (0, {"range": f"bytes=100-{CHUNK_BYTES + 99}"}),
        (1, {"range": f"bytes={CHUNK_BYTES + 5}-{CHUNK_BYTES + 99}"}),
    ],
    ids=["whole", "range", "range-from-chunk-1"],
)
def test_a_recording_whose_first_chunk_asked_is_damaged_answers_chunk_damaged(
    api_client, recorded, how, damaged, headers
):
    damage(recorded, damaged, how)

    response = get_recording(api_client, recorded, **headers)

    assert_chunk_damaged(response, damaged)
    assert_marked(recorded, damaged, how)


@pytest.mark.parametrize(
    ("damaged", "headers", "status", "before"),
    [
        (2, {}, 200, RECORDING[: 2 * CHUNK_BYTES]),
        (1, {"range": f"bytes=100-{2 * CHUNK_BYTES + 9}"}, 206, RECORDING[100:CHUNK_BYTES]),
    ],
    ids=["whole", "range"],
)
def test_a_later_damaged_chunk_breaks_the_recording_off_before_its_first_byte(
    api_client, recorded, how, damaged, headers, status, before
):
    damage(recorded, damaged, how)

    response = get_recording(api_client, recorded, **headers)

    assert response.status_code == status
    received = aborted_body(response)
    assert received == before
    assert len(received) < int(response["Content-Length"])
    assert_marked(recorded, damaged, how)


@pytest.mark.parametrize("how", list(DAMAGES))
def test_a_damaged_spool_file_is_never_served(api_client, recording, how):
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/pause")
    put_chunk(api_client, recording, 0, random_bytes(1000))
    chunk = Chunk.objects.get(session=recording)
    damage_spooled(chunk, how)

    response = download(api_client, recording, 0)

    assert_chunk_damaged(response, 0)
    chunk.refresh_from_db()
    assert (chunk.status, chunk.error.startswith(DAMAGES[how])) == ("damaged", True)
    assert "the spool" in chunk.error
    statistics = api_client.get("/api/v1/sessions/statistics").json()
    assert {key: statistics[key] for key in recount_system()} == recount_system()


def test_a_chunk_found_damaged_shows_everywhere(
    api_client, anonymous_client, clients, recorded, codec
):
    damage(recorded, 1, "flipped")
    assert download(api_client, recorded, 1).status_code == 500
    chunks = f"/api/v1/sessions/{recorded.id}/chunks"

    listed = api_client.get(chunks, {"status": "damaged"}).json()["results"]
    assert [(chunk["sequence"], chunk["status"]) for chunk in listed] == [(1, "damaged")]
    assert listed[0]["error"].startswith("hash mismatch in the chunk store")
    statistics = api_client.get(f"/api/v1/sessions/{recorded.id}/statistics").json()
    assert statistics["chunks_by_status"] == {
        "received": 0,
        "processing": 0,
        "stored": 2,
        "failed": 0,
        "damaged": 1,
    }
    assert {key: statistics[key] for key in recount_session(recorded)} == recount_session(recorded)
    system = api_client.get("/api/v1/sessions/statistics").json()
    assert {key: system[key] for key in recount_system()} == recount_system()
    pipeline = api_client.get(f"/api/v1/sessions/{recorded.id}/pipeline").json()
    assert (pipeline["stored"], pipeline["damaged"], pipeline["backlog_bytes"]) == (2, 1, 0)
    samples = scrape(anonymous_client)
    assert samples[("lucid_chunks", (("status", "damaged"),))] == 1
    assert samples[("lucid_chunks", (("status", "stored"),))] == 2
    assert samples[("lucid_chunks_damaged_total", ())] == 1
    admin = clients["auditor"]
    filtered = admin.get("/admin/chunks_app/chunk/", {"status__exact": "damaged"})
    assert recorded.name in filtered.content.decode()
    page = admin.get(f"/admin/sessions_app/session/{recorded.pk}/change/").content.decode()
    assert 'id="session-damaged"' in page
    assert "1 damaged chunk:" in page
    assert "2 stored · 0 failed · 1 damaged" in page
    dashboard = admin.get("/admin/dashboard/").content.decode()
    assert '?status__exact=damaged">1</a>' in dashboard


@pytest.mark.parametrize("codec", ["zstd"])
def test_a_chunk_is_marked_damaged_once(api_client, recorded):
    damage(recorded, 0, "deleted")
    for _ in range(2):
        assert_chunk_damaged(download(api_client, recorded, 0), 0)
    chunk = Chunk.objects.get(session=recorded, sequence=0)

    assert chunk_mark_damaged(chunk_id=chunk.pk, reason="hash mismatch: again") is None

    assert_marked(recorded, 0, "deleted")
    assert counters_read()["chunks.damaged_total"] == 1
    recorded.refresh_from_db()
    assert (recorded.chunks_stored, recorded.chunks_damaged) == (2, 1)


@pytest.mark.parametrize("codec", ["zstd"])
def test_intact_chunks_of_a_session_with_a_damaged_one_still_download(api_client, recorded):
    damage(recorded, 1, "truncated")

    assert download(api_client, recorded, 1).status_code == 500
    assert body_of(download(api_client, recorded, 0)) == BODIES[0]
    assert body_of(download(api_client, recorded, 2, range="bytes=10-19")) == BODIES[2][10:20]
