"""A chunk store that cannot be built leaves chunks waiting with the reason, not `processing`."""

import time

import pytest

from chunks_app.models import Chunk
from tests.chunks_app.helpers import body_of, download, put_chunk, screen_like, wait_until_settled

pytestmark = pytest.mark.django_db(transaction=True)

BODY = screen_like(5000)


def _waiting_with_an_error(session, *, timeout: float = 30) -> Chunk:
    """The session's chunk once processing put it back with an error (a worker may take it)."""
    deadline = time.monotonic() + timeout
    while not (chunk := Chunk.objects.get(session=session)).error:
        assert time.monotonic() < deadline, f"chunk still {chunk.status} without an error"
        time.sleep(0.05)
    return chunk


def test_the_chunk_waits_with_what_to_fix_and_is_stored_once_it_is_fixed(
    api_client, recording, settings
):
    working = (settings.LUCID_CHUNK_STORE_BACKEND, settings.LUCID_CHUNK_STORE_OPTIONS)
    settings.LUCID_CHUNK_STORE_BACKEND = "chunks_app.storage.s3.S3ChunkStore"
    settings.LUCID_CHUNK_STORE_OPTIONS = {"prefix": "no-bucket-given"}

    assert put_chunk(api_client, recording, 0, BODY).status_code == 201

    chunk = _waiting_with_an_error(recording)
    assert chunk.status == "received"
    assert "LUCID_CHUNK_STORE_OPTIONS do not fit" in chunk.error
    settings.LUCID_CHUNK_STORE_BACKEND, settings.LUCID_CHUNK_STORE_OPTIONS = working
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/pause")
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/resume")
    (stored,) = wait_until_settled(recording)
    assert stored.status == "stored"
    assert body_of(download(api_client, recording, 0)) == BODY
