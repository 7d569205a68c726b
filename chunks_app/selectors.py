"""Reads of chunks: listing, the raw bytes of one chunk or a whole recording, the manifest."""

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet

from chunks_app.codecs import get_codec
from chunks_app.merkle import merkle_root
from chunks_app.models import MAX_SEQUENCE, Chunk
from chunks_app.spool import get_spool
from chunks_app.storage import (
    ChunkNotFoundError,
    ChunkStore,
    ChunkStoreError,
    StoreUsage,
    get_chunk_store,
)
from core.choices import ChunkStatus
from core.errors import NotFound
from sessions_app.models import Session
from sessions_app.selectors import SessionAccess

READ_PIECE = 4 * 1024 * 1024
logger = logging.getLogger(__name__)

STORAGE_USED_CACHE_KEY = "lucid:storage:used-bytes"
STORAGE_USED_FRESH_CACHE_KEY = "lucid:storage:used-bytes:fresh"


def chunk_list(*, session: Session | SessionAccess) -> QuerySet[Chunk]:
    return Chunk.objects.filter(session_id=session.pk)


def chunk_get(*, session: Session | SessionAccess, sequence: int) -> Chunk:
    chunk = None
    if 0 <= sequence <= MAX_SEQUENCE:
        chunk = chunk_list(session=session).filter(sequence=sequence).first()
    if chunk is None:
        raise NotFound(f"Session {session.pk} has no chunk {sequence}.")
    return chunk


def chunk_read_stored(*, chunk: Chunk) -> Iterator[bytes]:
    """The chunk's bytes as stored (compressed with `chunk.algorithm`), in pieces."""
    with get_chunk_store().open(chunk.storage_key) as stored:
        while piece := stored.read(READ_PIECE):
            yield piece


def _open_raw(chunk: Chunk) -> BinaryIO:
    """The chunk's raw bytes: decompressed from the store, or from the spool until stored."""
    if chunk.status != ChunkStatus.STORED:
        try:
            return get_spool().open(chunk.spool_key)
        except ChunkNotFoundError:
            chunk.refresh_from_db()
            if chunk.status != ChunkStatus.STORED:
                raise
    return get_codec(chunk.algorithm).open_decompressed(get_chunk_store().open(chunk.storage_key))


def chunk_read_range(*, chunk: Chunk, start: int, end: int) -> Iterator[bytes] | BinaryIO:
    """Raw bytes `start`..`end` (inclusive) of the chunk, in pieces.

    When they lie uncompressed in a file and run to its end, the file itself is returned,
    positioned at `start`, so that the server can send it with sendfile.
    """
    raw = _open_raw(chunk)
    if raw.seekable() and end == chunk.size - 1 and isinstance(raw, io.IOBase):
        raw.seek(start)
        return raw
    return _read_pieces(raw, start=start, end=end)


def _read_pieces(raw: BinaryIO, *, start: int, end: int) -> Iterator[bytes]:
    with closing(raw):
        if raw.seekable():
            raw.seek(start)
        else:
            _skip(raw, start)
        remaining = end - start + 1
        while remaining > 0 and (piece := raw.read(min(READ_PIECE, remaining))):
            remaining -= len(piece)
            yield piece


def _skip(raw: BinaryIO, count: int) -> None:
    while count > 0 and (piece := raw.read(min(READ_PIECE, count))):
        count -= len(piece)


@dataclass(frozen=True)
class RecordingLayout:
    """Where each chunk's bytes lie in the session's recording."""

    chunks: list[Chunk]
    offsets: list[int]
    size: int
    merkle_root: str | None


def session_recording_layout(*, session: Session) -> RecordingLayout:
    chunks = list(chunk_list(session=session).order_by("sequence"))
    offsets, position = [], 0
    for chunk in chunks:
        offsets.append(position)
        position += chunk.size
    return RecordingLayout(
        chunks=chunks,
        offsets=offsets,
        size=position,
        merkle_root=merkle_root(chunk.sha256 for chunk in chunks),
    )


def recording_read_range(*, layout: RecordingLayout, start: int, end: int) -> Iterator[bytes]:
    """Raw bytes `start`..`end` (inclusive) of the recording, across chunk borders."""
    for chunk, offset in zip(layout.chunks, layout.offsets, strict=True):
        chunk_end = offset + chunk.size - 1
        if chunk_end < start or offset > end:
            continue
        yield from _read_pieces(
            _open_raw(chunk), start=max(start, offset) - offset, end=min(end, chunk_end) - offset
        )


def session_manifest(*, session: Session) -> dict:
    chunks = list(
        chunk_list(session=session).order_by("sequence").values("sequence", "size", "sha256")
    )
    return {
        "session": session.pk,
        "chunks": chunks,
        "merkle_root": merkle_root(chunk["sha256"] for chunk in chunks),
    }


def storage_usage() -> StoreUsage:
    """The chunk store's used and free bytes; free bytes are read live, used bytes (a walk of
    the whole store: seconds at millions of files) come from the cache.

    Only the first reading waits for a walk. Once the reading is older than
    LUCID_STORAGE_USAGE_CACHE_SECONDS, or `storage_usage_changed` was called, the next caller
    starts a walk in a background thread (one per cache) and every caller gets the last reading
    until it is done.
    """
    store = get_chunk_store()
    used = cache.get(STORAGE_USED_CACHE_KEY)
    if used is None:
        used = _storage_used_measure(store)
    elif cache.add(STORAGE_USED_FRESH_CACHE_KEY, True, settings.LUCID_STORAGE_USAGE_CACHE_SECONDS):
        threading.Thread(
            target=_storage_used_refresh, args=(store,), name="storage-usage", daemon=True
        ).start()
    return StoreUsage(path=store.location, used_bytes=used, free_bytes=store.free_bytes())


def _storage_used_measure(store: ChunkStore) -> int:
    used = store.used_bytes()
    cache.set(STORAGE_USED_CACHE_KEY, used, timeout=None)
    cache.set(STORAGE_USED_FRESH_CACHE_KEY, True, settings.LUCID_STORAGE_USAGE_CACHE_SECONDS)
    return used


def _storage_used_refresh(store: ChunkStore) -> None:
    try:
        _storage_used_measure(store)
    except ChunkStoreError as error:
        logger.warning("storage usage: the walk of %s failed: %s", store.location, error)


def storage_usage_changed() -> None:
    """Files were removed or added outside the pipeline: the next reading starts a new walk."""
    cache.delete(STORAGE_USED_FRESH_CACHE_KEY)
