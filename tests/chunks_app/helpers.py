"""What ingest tests share: upload helpers and waiting for the pipeline."""

import os
import time

from chunks_app.models import Chunk
from sessions_app.models import Session

KIB = 1024
# The chunk size of the sessions the API tests record into.
CHUNK_SIZE = 64 * KIB


def screen_like(size: int, *, seed: int = 0) -> bytes:
    """Compressible bytes: long runs of a few values, like a mostly static screen."""
    pattern = bytes((seed + i // 97) % 7 for i in range(4096))
    return (pattern * (size // len(pattern) + 1))[:size]


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def put_chunk(client, session: Session, sequence: int, body: bytes, **headers):
    return client.generic(
        "PUT",
        f"/api/v1/sessions/{session.id}/chunks/{sequence}",
        body,
        content_type="application/octet-stream",
        **_meta(headers),
    )


def post_stream(client, session: Session, body: bytes):
    return client.generic(
        "POST",
        f"/api/v1/sessions/{session.id}/stream",
        body,
        content_type="application/octet-stream",
    )


def download(client, session: Session, sequence: int, **headers):
    return client.get(
        f"/api/v1/sessions/{session.id}/chunks/{sequence}/download",
        **_meta(headers),
    )


def _meta(headers: dict[str, str]) -> dict[str, str]:
    """Keyword headers (`content_digest=...`) as the test client's META keys."""
    return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}


def body_of(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def wait_until_settled(session: Session, *, timeout: float = 30) -> list[Chunk]:
    """The session's chunks once none is `received` or `processing` (a worker may be at work)."""
    deadline = time.monotonic() + timeout
    while True:
        chunks = list(Chunk.objects.filter(session=session).order_by("sequence"))
        if all(chunk.status in ("stored", "failed") for chunk in chunks):
            return chunks
        if time.monotonic() > deadline:
            raise AssertionError(f"chunks not settled: {[(c.sequence, c.status) for c in chunks]}")
        time.sleep(0.05)
