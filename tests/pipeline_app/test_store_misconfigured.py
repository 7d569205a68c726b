"""A chunk store that cannot be built leaves chunks waiting with the reason, not `processing`."""

import pytest

from chunks_app.models import Chunk
from tests.chunks_app.helpers import body_of, download, put_chunk, screen_like, wait_until_settled

pytestmark = pytest.mark.django_db(transaction=True)

BODY = screen_like(5000)


def test_the_chunk_waits_with_what_to_fix_and_is_stored_once_it_is_fixed(
    api_client, recording, settings
):
    working = (settings.LUCID_CHUNK_STORE_BACKEND, settings.LUCID_CHUNK_STORE_OPTIONS)
    settings.LUCID_CHUNK_STORE_BACKEND = "chunks_app.storage.s3.S3ChunkStore"
    settings.LUCID_CHUNK_STORE_OPTIONS = {"prefix": "no-bucket-given"}

    assert put_chunk(api_client, recording, 0, BODY).status_code == 201

    chunk = Chunk.objects.get(session=recording)
    assert chunk.status == "received"
    assert "LUCID_CHUNK_STORE_OPTIONS do not fit" in chunk.error
    settings.LUCID_CHUNK_STORE_BACKEND, settings.LUCID_CHUNK_STORE_OPTIONS = working
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/pause")
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/resume")
    (stored,) = wait_until_settled(recording)
    assert stored.status == "stored"
    assert body_of(download(api_client, recording, 0)) == BODY
