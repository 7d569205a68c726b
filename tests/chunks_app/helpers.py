"""What ingest tests share: upload helpers and waiting for the pipeline."""

import os
import time
from pathlib import Path

from chunks_app.models import Chunk
from chunks_app.storage import get_chunk_store, get_spool
from core.choices import CompressionAlgorithm
from sessions_app.models import Session
from tests.factories import SessionFactory
from tests.support.faults import damage, remains

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


def files_under(directory: Path) -> list[str]:
    """The files below `directory` (hidden ones too), as paths relative to it."""
    return sorted(
        str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()
    )


def files_of_session(session_id) -> list[str]:
    """Whatever of the session is left in the spool and the chunk store, hidden files and
    unfinished uploads too, as `<store location>/<name>`."""
    return [
        f"{store.location.rstrip('/')}/{name}"
        for store in (get_spool(), get_chunk_store())
        for name in remains(store, f"{session_id}/")
    ]


def body_of(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def wait_until_settled(session: Session, *, timeout: float = 30) -> list[Chunk]:
    """The session's chunks once none is `received` or `processing` (a worker may be at work)."""
    deadline = time.monotonic() + timeout
    while True:
        chunks = list(Chunk.objects.filter(session=session).order_by("sequence"))
        if all(chunk.status in ("stored", "failed", "damaged") for chunk in chunks):
            return chunks
        if time.monotonic() > deadline:
            raise AssertionError(f"chunks not settled: {[(c.sequence, c.status) for c in chunks]}")
        time.sleep(0.05)


def damage_stored(chunk: Chunk, how: str) -> None:
    """One of DAMAGES done to the chunk's bytes in the chunk store."""
    damage(get_chunk_store(), chunk.storage_key, how)


def damage_spooled(chunk: Chunk, how: str) -> None:
    """One of DAMAGES done to the chunk's bytes in the spool."""
    damage(get_spool(), chunk.spool_key, how)


def record_stored(client, *, owner, codec: str, bodies: list[bytes]) -> Session:
    """A stopped session whose chunks, `bodies` in order, are all stored with `codec`."""
    session = SessionFactory(
        owner=owner,
        status="recording",
        chunk_size=CHUNK_SIZE,
        compression_algorithm=codec,
        compression_level=CompressionAlgorithm(codec).default_level,
    )
    for sequence, body in enumerate(bodies):
        put_chunk(client, session, sequence, body)
    assert [chunk.algorithm for chunk in wait_until_settled(session)] == [codec] * len(bodies)
    client.post(f"/api/v1/sessions/{session.id}/stop")
    return session
