"""Uploads compressed and stored in their request (LUCID_STORE_ON_RECEIPT_MAX_KB), in every
world."""

import pytest

from chunks_app.models import Chunk
from chunks_app.sealing import active_key_id, stored_key
from chunks_app.storage import ChunkStoreError, get_chunk_store, get_spool
from core.counters import counters_read
from tests.chunks_app.helpers import (
    body_of,
    download,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)


@pytest.fixture(autouse=True)
def store_on_receipt(settings):
    settings.LUCID_STORE_ON_RECEIPT_MAX_KB = settings.LUCID_MAX_CHUNK_SIZE_MB * 1024


def _spool_writes(faults) -> list[str]:
    return [key for operation, key in faults.calls if operation == "put"]


def test_an_upload_is_stored_without_touching_the_spool(api_client, recording, spool_faults):
    body = screen_like(5000)

    response = put_chunk(api_client, recording, 0, body)

    assert response.status_code == 201
    assert response.json()["status"] == "stored"
    assert response.json()["compressed_size"] < len(body)
    assert _spool_writes(spool_faults) == []
    chunk = Chunk.objects.get(session=recording, sequence=0)
    assert (chunk.status, chunk.spool_key, chunk.offset) == ("stored", "", 0)
    assert chunk.queued_at == chunk.claimed_at == chunk.stored_at
    assert get_chunk_store().exists(chunk.storage_key)
    assert body_of(download(api_client, recording, 0)) == body


def test_an_incompressible_upload_is_stored_as_none(api_client, recording):
    body = random_bytes(4000)

    put_chunk(api_client, recording, 0, body)

    chunk = Chunk.objects.get(session=recording, sequence=0)
    assert (chunk.algorithm, chunk.compressed_size, chunk.stored_sha256) == (
        "none",
        4000,
        chunk.sha256,
    )
    assert body_of(download(api_client, recording, 0)) == body


def test_totals_count_a_stored_upload_once(api_client, recording):
    before = counters_read()
    bodies = [screen_like(3000, seed=1), random_bytes(2000)]

    for sequence, body in enumerate(bodies):
        put_chunk(api_client, recording, sequence, body)

    recording.refresh_from_db()
    chunks = list(Chunk.objects.filter(session=recording))
    assert (recording.chunk_count, recording.size) == (2, 5000)
    assert (recording.chunks_received, recording.chunks_processing, recording.chunks_stored) == (
        0,
        0,
        2,
    )
    assert recording.backlog_bytes == 0
    assert recording.compressed_size == sum(chunk.compressed_size for chunk in chunks)
    after = counters_read()
    for key, change in {
        "chunks.stored": 2,
        "chunks.received": 0,
        "chunks.processing": 0,
        "chunks.backlog_bytes": 0,
        "chunks.raw_bytes": 5000,
        "chunks.stored_bytes": recording.compressed_size,
    }.items():
        assert after.get(key, 0) - before.get(key, 0) == change, key


def test_a_paused_pipeline_keeps_uploads_spooled(api_client, recording, spool_faults):
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/pause")

    response = put_chunk(api_client, recording, 0, screen_like(2000))

    assert response.json()["status"] == "received"
    chunk = Chunk.objects.get(session=recording, sequence=0)
    assert _spool_writes(spool_faults) == [chunk.spool_key]
    assert get_spool().exists(chunk.spool_key)


@pytest.mark.django_db(transaction=True)
def test_a_file_left_under_the_stored_name_is_not_overwritten_by_the_request(api_client, recording):
    """A file of an upload that died before its row: the new upload goes through the spool,
    and the pipeline stores it in place of the leftover."""
    body = screen_like(4000, seed=2)
    key = stored_key(
        session_id=recording.pk,
        sequence=0,
        algorithm=recording.compression_algorithm,
        key_id=active_key_id(),
    )
    get_chunk_store().put(key, b"left by an upload that died")

    response = put_chunk(api_client, recording, 0, body)

    assert response.status_code == 201
    (chunk,) = wait_until_settled(recording)
    assert (chunk.status, chunk.storage_key) == ("stored", key)
    assert body_of(download(api_client, recording, 0)) == body


@pytest.mark.django_db(transaction=True)
def test_a_store_that_fails_leaves_the_upload_spooled_and_acknowledged(
    api_client, recording, chunk_store_faults
):
    chunk_store_faults.fail("put", ChunkStoreError("Could not write to the chunk store."), times=1)
    body = screen_like(3000, seed=3)

    response = put_chunk(api_client, recording, 0, body)

    assert response.status_code == 201
    (chunk,) = wait_until_settled(recording)
    assert chunk.status == "stored"
    assert body_of(download(api_client, recording, 0)) == body


def test_an_upload_over_the_limit_is_spooled_for_the_pipeline(
    api_client, recording, spool_faults, settings
):
    settings.LUCID_STORE_ON_RECEIPT_MAX_KB = 2

    within = put_chunk(api_client, recording, 0, screen_like(2048))
    put_chunk(api_client, recording, 1, screen_like(2049, seed=1))

    assert within.json()["status"] == "stored"
    over = Chunk.objects.get(session=recording, sequence=1)
    assert _spool_writes(spool_faults) == [over.spool_key]
