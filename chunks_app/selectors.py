"""Reads of chunks: listing, the checked raw bytes of a chunk or a whole recording, the manifest."""

import contextlib
import functools
import hashlib
import io
import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, QuerySet

from chunks_app.codecs import CodecError, get_codec
from chunks_app.merkle import merkle_root
from chunks_app.models import MAX_SEQUENCE, Chunk, TimeMark
from chunks_app.sealing import chunk_unsealed
from chunks_app.spool import get_spool
from chunks_app.storage import (
    ChunkNotFoundError,
    ChunkStore,
    ChunkStoreError,
    StoreUsage,
    get_chunk_store,
)
from core.choices import CompressionAlgorithm
from core.counters import counters_read
from core.encryption import AuthenticationFailed
from core.errors import ApplicationError, NotFound
from sessions_app.choices import IngestMode, SessionStatus
from sessions_app.models import Session
from sessions_app.selectors import SessionAccess

MISSING_SEQUENCES_SHOWN = 1000
# A large chunk kept as it is is read, hashed and sent in pieces of this size.
READ_PIECE = 1024 * 1024
AUTHENTICATION_FAILED = "authentication failed"
Read = TypeVar("Read")
logger = logging.getLogger(__name__)

STORAGE_USED_CACHE_KEY = "lucid:storage:used-bytes"
STORAGE_USED_FRESH_CACHE_KEY = "lucid:storage:used-bytes:fresh"


def chunk_list(*, session: Session | SessionAccess) -> QuerySet[Chunk]:
    return Chunk.objects.filter(session_id=session.pk)


def chunk_get(*, session: Session | SessionAccess, sequence: int) -> Chunk:
    if 0 <= sequence <= MAX_SEQUENCE:
        with contextlib.suppress(Chunk.DoesNotExist):
            return chunk_list(session=session).get(sequence=sequence)
    raise NotFound(f"Session {session.pk} has no chunk {sequence}.")


class ChunkDamaged(ApplicationError):
    """A chunk's kept bytes are not those recorded for it: none of them may be sent."""

    status_code = 500
    default_code = "chunk_damaged"

    def __init__(self, *, chunk: Chunk, reason: str):
        super().__init__(
            f"Chunk {chunk.sequence} is damaged ({reason}); none of its bytes are sent.",
            extra={"sequence": chunk.sequence},
        )
        self.chunk_id = chunk.pk
        self.reason = reason


@dataclass(frozen=True)
class _Kept:
    """Where a chunk's bytes are kept, in which codec, under which key, and the size and sha256
    recorded for them (before sealing)."""

    store: ChunkStore
    place: str
    key: str
    algorithm: str
    size: int
    sha256: str
    key_id: str | None


def _kept(chunk: Chunk) -> _Kept:
    """The chunk store once the chunk was stored, the spool (raw bytes) until then."""
    if chunk.storage_key:
        return _Kept(
            store=get_chunk_store(),
            place="chunk store",
            key=chunk.storage_key,
            algorithm=chunk.algorithm,
            size=chunk.compressed_size,
            sha256=chunk.stored_sha256,
            key_id=chunk.key_id,
        )
    return _Kept(
        store=get_spool(),
        place="spool",
        key=chunk.spool_key,
        algorithm=CompressionAlgorithm.NONE,
        size=chunk.size,
        sha256=chunk.sha256,
        key_id=chunk.key_id,
    )


def _mismatch(data: bytes, kept: _Kept) -> str | None:
    return _size_mismatch(len(data), kept) or _hash_mismatch(hashlib.sha256(data).hexdigest(), kept)


def _size_mismatch(size: int, kept: _Kept) -> str | None:
    where = f"in the {kept.place}"
    if size < kept.size:
        return f"truncated {where}: {size} of {kept.size} bytes"
    if size > kept.size:
        return f"size mismatch {where}: more than the {kept.size} bytes recorded"
    return None


def _hash_mismatch(digest: str, kept: _Kept) -> str | None:
    if digest != kept.sha256:
        return f"hash mismatch in the {kept.place}: sha256 {digest}, recorded {kept.sha256}"
    return None


def _opened(chunk: Chunk, read: Callable[[_Kept, BinaryIO], Read]) -> tuple[_Kept, Read]:
    """Where the chunk's bytes are kept, and what `read` makes of the file there."""
    kept = _kept(chunk)
    try:
        with kept.store.open(kept.key) as file:
            return kept, read(kept, file)
    except ChunkNotFoundError:
        chunk.refresh_from_db()
        if _kept(chunk).key != kept.key:  # stored or rewritten meanwhile, the old file removed
            return _opened(chunk, read)
        raise ChunkDamaged(chunk=chunk, reason=f"file missing from the {kept.place}") from None


def _content(kept: _Kept, file: BinaryIO) -> bytes:
    """The kept file as it is."""
    return file.read() if kept.key_id else file.read(kept.size + 1)


def _checked_plaintext(chunk: Chunk, kept: _Kept, file: BinaryIO) -> bytes | bytearray:
    """The plaintext of a kept file, checked; `ChunkDamaged` if wrong."""
    try:
        data = chunk_unsealed(
            file,
            session_id=chunk.session_id,
            sequence=chunk.sequence,
            key_id=kept.key_id,
            limit=kept.size + 1,
        )
    except AuthenticationFailed:
        raise ChunkDamaged(chunk=chunk, reason=AUTHENTICATION_FAILED) from None
    if mismatch := _mismatch(data, kept):
        raise ChunkDamaged(chunk=chunk, reason=mismatch)
    return data


def _read_kept(chunk: Chunk) -> tuple[bytes | bytearray, str]:
    """The chunk's kept bytes, read whole, unsealed and checked, and their codec;
    `ChunkDamaged` if wrong."""
    kept, data = _opened(chunk, functools.partial(_checked_plaintext, chunk))
    return data, kept.algorithm


@dataclass(frozen=True)
class KeptFile:
    """A chunk's file as kept (sealed or not), checked: its codec, the size and sha256 of its
    bytes before sealing, and its key."""

    content: bytes
    algorithm: str
    size: int
    sha256: str
    key_id: str | None


def chunk_read_kept_file(*, chunk: Chunk) -> KeptFile:
    """The chunk's file as the chunk store (raw: the spool until stored) keeps it, checked by
    unsealing it; for copies that stay sealed, such as backups."""
    kept, content = _opened(chunk, _content)
    _checked_plaintext(chunk, kept, io.BytesIO(content))
    return KeptFile(content, kept.algorithm, kept.size, kept.sha256, kept.key_id)


def chunk_read_raw(*, chunk: Chunk) -> bytes:
    """The chunk's raw bytes, decoded from kept bytes that match their recorded sha256."""
    data, algorithm = _read_kept(chunk)
    try:
        raw = get_codec(algorithm).decompress(data)
    except CodecError as error:
        raise ChunkDamaged(chunk=chunk, reason=f"undecodable: {error}") from error
    if len(raw) != chunk.size:
        reason = f"undecodable: {len(raw)} bytes decoded, {chunk.size} recorded"
        raise ChunkDamaged(chunk=chunk, reason=reason)
    return raw


def chunk_read_stored(*, chunk: Chunk) -> Iterator[bytes]:
    """The kept bytes, checked and unsealed at once: as stored (in `chunk.algorithm`), raw
    until stored."""
    data, _ = _read_kept(chunk)
    return iter((data,))


def chunk_read_range(*, chunk: Chunk, start: int, end: int) -> Iterator[bytes]:
    """Raw bytes `start`..`end` (inclusive) of the chunk, checked.

    A large chunk kept as it is (uncompressed, unsealed) is read and hashed piece by piece, and
    each piece goes out as it is read but the last, which waits until the whole file matched:
    a file cut short or missing is found before any byte, a changed byte before the last one
    (the caller then aborts the response). Other chunks are read, checked and decoded at once.
    """
    kept = _kept(chunk)
    if kept.algorithm != CompressionAlgorithm.NONE or kept.key_id or kept.size <= READ_PIECE:
        return iter((chunk_read_raw(chunk=chunk)[start : end + 1],))
    try:
        mismatch = _size_mismatch(kept.store.size(kept.key), kept)
        file = kept.store.open(kept.key)
    except ChunkNotFoundError:
        return iter((chunk_read_raw(chunk=chunk)[start : end + 1],))
    if mismatch:
        file.close()
        raise ChunkDamaged(chunk=chunk, reason=mismatch)
    return _pieces_checked_as_read(chunk, kept, file, start=start, end=end)


def _pieces_checked_as_read(
    chunk: Chunk, kept: _Kept, file: BinaryIO, *, start: int, end: int
) -> Iterator[bytes]:
    """Bytes `start`..`end` of `file`, hashed as read; the last piece once all of it matched."""
    hasher = hashlib.sha256()
    position = 0
    held = None
    with file:
        while piece := file.read(READ_PIECE):
            hasher.update(piece)
            first, position = position, position + len(piece)
            if position > start and first <= end:
                if held is not None:
                    yield held
                held = piece[max(start - first, 0) : end + 1 - first]
    if mismatch := _size_mismatch(position, kept) or _hash_mismatch(hasher.hexdigest(), kept):
        raise ChunkDamaged(chunk=chunk, reason=mismatch)
    if held is not None:
        yield held


@dataclass(frozen=True)
class RecordingLayout:
    """The recording's size and ETag, and where each chunk's bytes lie in it.

    A stopped session's chunks carry their offsets and its Merkle root was sealed at stop, so
    finding the chunks of a range takes two indexed lookups however long the recording is.
    Until then chunks may still arrive between others: the layout is worked out from all rows.
    """

    session_id: uuid.UUID
    size: int
    merkle_root: str | None
    loaded: list[tuple[int, Chunk]] | None = None

    def chunks_between(self, start: int, end: int) -> Iterator[tuple[int, Chunk]]:
        """The chunks holding bytes `start`..`end` (inclusive), in order, with their offsets."""
        if self.loaded is not None:
            return (
                (offset, chunk)
                for offset, chunk in self.loaded
                if offset <= end and start < offset + chunk.size
            )
        chunks = Chunk.objects.filter(session_id=self.session_id)
        first = chunks.filter(offset__lte=start).order_by("-offset").first()
        if first is None:
            return iter(())
        rest = chunks.filter(offset__gt=start, offset__lte=end).order_by("offset")
        following = ((chunk.offset, chunk) for chunk in rest.iterator(chunk_size=100))
        return itertools.chain(((first.offset, first),), following)


def session_recording_layout(*, session: Session) -> RecordingLayout:
    if session.status == SessionStatus.STOPPED:
        return RecordingLayout(
            session_id=session.pk, size=session.size, merkle_root=session.merkle_root or None
        )
    chunks = list(chunk_list(session=session).order_by("sequence"))
    loaded, position = [], 0
    for chunk in chunks:
        loaded.append((position, chunk))
        position += chunk.size
    return RecordingLayout(
        session_id=session.pk,
        size=position,
        merkle_root=merkle_root(chunk.sha256 for chunk in chunks),
        loaded=loaded,
    )


def recording_read_range(*, layout: RecordingLayout, start: int, end: int) -> Iterator[bytes]:
    """Raw bytes `start`..`end` (inclusive) of the recording, across chunk borders.

    Each chunk is checked before its first byte is given: the first at once, before any
    response, each other one once the bytes before it are taken.
    """
    readings = (
        chunk_read_range(
            chunk=chunk,
            start=max(start, offset) - offset,
            end=min(end, offset + chunk.size - 1) - offset,
        )
        for offset, chunk in layout.chunks_between(start, end)
    )
    first = next(readings, ())
    return itertools.chain(first, itertools.chain.from_iterable(readings))


@dataclass(frozen=True)
class PlacedMark:
    """A time mark and the byte of the recording it marks (None while the chunks before its
    chunk are not all there)."""

    time_ms: int
    offset: int | None


def time_mark_list(*, session: Session | SessionAccess) -> QuerySet[TimeMark]:
    return TimeMark.objects.filter(session_id=session.pk)


def time_marks_placed(*, session: Session, marks: Iterable[TimeMark]) -> list[PlacedMark]:
    """The marks with their offsets: a stream's from its fixed chunk size, uploaded chunks'
    from where the chunks lie."""
    marks = list(marks)
    if session.ingest_mode == IngestMode.STREAM:
        chunk_offsets = {mark.sequence: mark.sequence * session.chunk_size for mark in marks}
    else:
        rows = chunk_list(session=session).filter(sequence__in={mark.sequence for mark in marks})
        chunk_offsets = dict(rows.values_list("sequence", "offset"))
    return [
        PlacedMark(
            time_ms=mark.time_ms,
            offset=None
            if chunk_offsets.get(mark.sequence) is None
            else chunk_offsets[mark.sequence] + mark.position,
        )
        for mark in marks
    ]


def time_mark_at(*, session: Session, at_ms: int) -> PlacedMark:
    """The mark at or before media time `at_ms`."""
    mark = time_mark_list(session=session).filter(time_ms__lte=at_ms).order_by("-time_ms").first()
    if mark is None:
        raise NotFound(
            f"Session {session.pk} has no time mark at or before {at_ms} ms.",
            code="time_mark_not_found",
        )
    return time_marks_placed(session=session, marks=[mark])[0]


def recording_bytes_available(*, session: Session) -> int:
    """How many of the recording's first bytes are in chunks and placed: all once stopped."""
    if session.status == SessionStatus.STOPPED:
        return session.size
    placed = chunk_list(session=session).filter(offset__isnull=False).order_by("-offset")
    last = placed.values_list("offset", "size").first()
    return 0 if last is None else last[0] + last[1]


def chunk_sequences_complete(*, session_id: uuid.UUID) -> bool:
    """Whether the session's chunks are numbered 0…n−1 without a gap; true when it has none."""
    found = Chunk.objects.filter(session_id=session_id).aggregate(
        count=Count("pk"), last=Max("sequence")
    )
    return found["last"] is None or found["last"] + 1 == found["count"]


def _missing_sequences(sequences: Iterable[int], *, shown: int) -> tuple[list[int], int]:
    """The first `shown` sequences missing below the highest of `sequences` (ascending, each
    once), and how many are missing in all."""
    missing: list[int] = []
    count = expected = 0
    for sequence in sequences:
        if sequence > expected:
            count += sequence - expected
            missing.extend(range(expected, min(sequence, expected + shown - len(missing))))
        expected = sequence + 1
    return missing, count


def session_missing_sequences(*, session: Session, shown: int) -> tuple[list[int], int]:
    """The first `shown` sequences missing below the session's highest one, and their count."""
    sequences = chunk_list(session=session).order_by("sequence").values_list("sequence", flat=True)
    return _missing_sequences(sequences.iterator(), shown=shown)


def session_manifest(*, session: Session) -> dict:
    """The chunks' hashes, their Merkle root and the sequences missing below the highest one."""
    chunks = list(
        chunk_list(session=session).order_by("sequence").values("sequence", "size", "sha256")
    )
    missing, missing_count = _missing_sequences(
        (chunk["sequence"] for chunk in chunks), shown=MISSING_SEQUENCES_SHOWN
    )
    return {
        "session": session.pk,
        "chunks": chunks,
        "merkle_root": merkle_root(chunk["sha256"] for chunk in chunks),
        "complete": session.status == SessionStatus.STOPPED and not missing_count,
        "missing_sequences": missing,
        "missing_count": missing_count,
    }


def storage_used_counted() -> int:
    """The bytes the chunk rows say are kept: stored chunks and the spool's backlog."""
    counters = counters_read(["chunks.stored_bytes", "chunks.backlog_bytes"])
    return sum(counters.values())


def storage_free_bytes() -> int:
    """The chunk store's free bytes: read live from its filesystem, or for an object store the
    quota less what the rows count."""
    store = get_chunk_store()
    if store.usage_from_database:
        return max(settings.LUCID_STORAGE_QUOTA_BYTES - storage_used_counted(), 0)
    return store.free_bytes()


def storage_usage() -> StoreUsage:
    """The chunk store's used and free bytes; free bytes are read live, used bytes (a walk of
    the whole store: seconds at millions of files) come from the cache.

    An object store's use is what the rows count, of LUCID_STORAGE_QUOTA_BYTES (a listing of
    the bucket would cost a request per 1000 objects).

    Only the first reading waits for a walk. Once the reading is older than
    LUCID_STORAGE_USAGE_CACHE_SECONDS, or `storage_usage_changed` was called, the next caller
    starts a walk in a background thread (one per cache) and every caller gets the last reading
    until it is done.
    """
    store = get_chunk_store()
    if store.usage_from_database:
        used = storage_used_counted()
        return StoreUsage(path=store.location, used_bytes=used, free_bytes=storage_free_bytes())
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
