"""A large chunk kept as it is goes out as it is read and hashed; its last piece waits for the
check (chunks_app.selectors.chunk_read_range)."""

import pytest

from chunks_app.models import Chunk
from chunks_app.selectors import READ_PIECE, ChunkDamaged
from tests.chunks_app.helpers import body_of, damage_stored, download, put_chunk, random_bytes
from tests.factories import SessionFactory

SIZE = 2 * READ_PIECE + READ_PIECE // 2
BODY = random_bytes(SIZE)


@pytest.fixture
def large(api_client, user, settings):
    """A session whose one chunk, incompressible, is stored as it is, in three pieces (by its
    upload's request, in every world)."""
    settings.LUCID_STORE_ON_RECEIPT_MAX_KB = settings.LUCID_MAX_CHUNK_SIZE_MB * 1024
    session = SessionFactory(owner=user, status="recording", chunk_size=4 * READ_PIECE)
    assert put_chunk(api_client, session, 0, BODY).status_code == 201
    chunk = Chunk.objects.get(session=session, sequence=0)
    assert (chunk.status, chunk.algorithm, chunk.key_id) == ("stored", "none", None)
    return session


def test_a_large_chunk_is_streamed_whole(api_client, large):
    response = download(api_client, large, 0)

    assert response.status_code == 200
    assert response.streaming
    assert body_of(response) == BODY


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 99),
        (READ_PIECE - 10, READ_PIECE + 9),
        (READ_PIECE + 5, 2 * READ_PIECE + 7),
        (2 * READ_PIECE + 1, SIZE - 1),
        (0, SIZE - 1),
    ],
    ids=["first piece", "across a border", "two borders", "last piece", "all"],
)
def test_a_range_of_a_large_chunk_is_its_bytes(api_client, large, start, end):
    response = download(api_client, large, 0, range=f"bytes={start}-{end}")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert body_of(response) == BODY[start : end + 1]


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_a_large_chunk_cut_short_or_gone_answers_chunk_damaged_before_any_byte(
    api_client, large, how
):
    damage_stored(Chunk.objects.get(session=large, sequence=0), how)

    response = download(api_client, large, 0)

    assert response.status_code == 500
    assert response.json()["code"] == "chunk_damaged"
    assert Chunk.objects.get(session=large, sequence=0).status == "damaged"


def test_a_changed_byte_of_a_large_chunk_breaks_the_download_off_before_its_last_piece(
    api_client, large
):
    damage_stored(Chunk.objects.get(session=large, sequence=0), "flipped")

    response = download(api_client, large, 0)

    assert response.status_code == 200
    received = bytearray()
    with pytest.raises(ChunkDamaged):
        for piece in response.streaming_content:
            received += piece
    assert len(received) == 2 * READ_PIECE
    chunk = Chunk.objects.get(session=large, sequence=0)
    assert chunk.status == "damaged"
    assert chunk.error.startswith("hash mismatch")
