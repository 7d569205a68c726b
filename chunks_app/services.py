"""Writes of chunks: durable ingest, sealing at stop, marking damage, a session's files."""

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError
from django.db.models import Q

from chunks_app.merkle import merkle_root
from chunks_app.models import MAX_SEQUENCE, Chunk
from chunks_app.sealing import active_key_id, chunk_seal, upload_spool_key
from chunks_app.selectors import ChunkDamaged, chunk_sequences_complete
from chunks_app.signals import chunks_received
from chunks_app.spool import Segment, SessionStream, get_spool
from chunks_app.storage import get_chunk_store
from core.audit import audit_record
from core.choices import AuditAction, ChunkStatus
from core.db import atomic_retried, on_commit
from core.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    ValidationFailed,
)
from sessions_app import services as session_services
from sessions_app import tallies
from sessions_app.choices import IngestMode, SessionStatus
from sessions_app.models import Session
from sessions_app.tallies import tally_apply

READ_PIECE = 1024 * 1024
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamAppendResult:
    received: int
    offset: int
    chunks: list[int]


def _not_recording(session: Session) -> Conflict:
    return Conflict(
        f"The session accepts data only while 'recording'; it is '{session.status}'.",
        code="session_not_recording",
        extra={"status": session.status},
    )


def _session_gone(session: Session) -> NotFound:
    return NotFound(f"No session with id '{session.pk}'.")


def _not_recording_now(session: Session) -> Conflict | NotFound:
    """The error for a session that stopped recording (or vanished) while we were writing."""
    try:
        session.refresh_from_db(fields=["status"])
    except Session.DoesNotExist:
        return _session_gone(session)
    return _not_recording(session)


def _require_recording(session: Session) -> None:
    if session.status != SessionStatus.RECORDING:
        raise _not_recording(session)


@contextmanager
def _lost_to_deletion(session: Session) -> Iterator[None]:
    """A write that fails because its session was deleted meanwhile answers 404, and removes
    the files it made after the deletion removed the session's."""
    try:
        yield
    except (ApplicationError, StorageUnavailable, ObjectDoesNotExist):
        if Session.objects.filter(pk=session.pk).exists():
            raise
        session_files_delete(session_id=session.pk)
        raise _session_gone(session) from None


def _claim_ingest_mode(*, session: Session, mode: str) -> None:
    """Fix the session's ingest style on first use; the other style is then a conflict."""
    if session.ingest_mode == mode:
        return
    Session.objects.filter(pk=session.pk, ingest_mode=IngestMode.UNDECIDED).update(ingest_mode=mode)
    try:
        session.refresh_from_db(fields=["ingest_mode"])
    except Session.DoesNotExist:
        raise _session_gone(session) from None
    if session.ingest_mode != mode:
        raise Conflict(
            f"This session receives data by {session.get_ingest_mode_display().lower()}; "
            "one session uses one ingest style.",
            code="ingest_mode_conflict",
        )


def _too_large(chunk_size: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The body is larger than the session's chunk_size of {chunk_size} bytes; "
        "split it, or send it to the stream endpoint.",
        extra={"chunk_size": chunk_size},
    )


def _body_pieces(body: BinaryIO | None, *, limit: int | None) -> Iterator[bytes]:
    """The request body in pieces, never more than one piece in memory."""
    total = 0
    while body is not None and (piece := body.read(READ_PIECE)):
        total += len(piece)
        if limit is not None and total > limit:
            raise _too_large(limit)
        yield piece


class _ChunkBody:
    """An uploaded chunk's body in pieces, at least one byte and at most `chunk_size`, with
    the size and sha256 of what was read."""

    def __init__(self, body: BinaryIO | None, *, chunk_size: int) -> None:
        self.body = body
        self.chunk_size = chunk_size
        self.hasher = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in _body_pieces(self.body, limit=self.chunk_size):
            self.hasher.update(piece)
            self.size += len(piece)
            yield piece
        if not self.size:
            raise ValidationFailed("A chunk needs at least one byte.", code="empty_chunk")


def _count_chunks_in(*, session: Session, chunks: list[Chunk]) -> bool:
    """Add `chunks` to the totals if the session is still recording; False if it is not."""
    tally = tallies.chunks_received(count=len(chunks), size=sum(chunk.size for chunk in chunks))
    return tally_apply(
        session_id=session.pk, tally=tally, only_if=Q(status=SessionStatus.RECORDING)
    )


def _same_or_conflict(*, existing: Chunk, size: int, sha256: str) -> Chunk:
    if existing.size == size and existing.sha256 == sha256:
        return existing
    raise Conflict(
        f"Chunk {existing.sequence} already holds different bytes (sha256 {existing.sha256}).",
        code="chunk_conflict",
        extra={"sha256": existing.sha256},
    )


def chunk_ingest(
    *,
    session: Session,
    sequence: int,
    body: BinaryIO | None,
    content_length: int | None,
    expected_sha256: bytes | None = None,
) -> tuple[Chunk, bool]:
    """Spool an uploaded chunk durably and queue it; returns the chunk and whether it is new.

    The same bytes under an existing sequence are an idempotent retry; other bytes conflict.
    `content_length` is None for a chunked body, whose size is known once read.
    """
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValidationFailed(
            f"sequence must be between 0 and {MAX_SEQUENCE}.",
            fields={"sequence": ["Out of range."]},
        )
    _require_recording(session)
    _claim_ingest_mode(session=session, mode=IngestMode.CHUNKS)
    if content_length is not None and content_length > session.chunk_size:
        raise _too_large(session.chunk_size)

    received = _ChunkBody(body, chunk_size=session.chunk_size)
    hasher = received.hasher
    existing = Chunk.objects.filter(session=session, sequence=sequence).first()
    if existing is not None:
        for _ in received:
            pass
        _check_digest(hasher=hasher, expected=expected_sha256)
        sha256 = hasher.hexdigest()
        return _same_or_conflict(existing=existing, size=received.size, sha256=sha256), False

    with _lost_to_deletion(session):
        key_id = active_key_id()
        chunk = Chunk(id=uuid.uuid4(), session=session, sequence=sequence, key_id=key_id)
        chunk.spool_key = upload_spool_key(session_id=session.pk, chunk_id=chunk.id, key_id=key_id)
        spool = get_spool()
        spool.put(
            chunk.spool_key,
            chunk_seal(received, session_id=session.pk, sequence=sequence, key_id=key_id),
        )
        chunk.size = received.size
        chunk.sha256 = hasher.hexdigest()
        try:
            _check_digest(hasher=hasher, expected=expected_sha256)
            atomic_retried(lambda: _record_upload(session=session, chunk=chunk))
        except IntegrityError:
            spool.delete(chunk.spool_key)
            existing = Chunk.objects.filter(session=session, sequence=sequence).first()
            if existing is None:
                raise _not_recording_now(session) from None
            return _same_or_conflict(existing=existing, size=chunk.size, sha256=chunk.sha256), False
        except BaseException:
            spool.delete(chunk.spool_key)
            raise
        return chunk, True


def _record_upload(*, session: Session, chunk: Chunk) -> None:
    if not _count_chunks_in(session=session, chunks=[chunk]):
        raise _not_recording_now(session)
    chunk.save(force_insert=True)
    chunks_received.send(sender=Chunk, session=session, chunk_ids=[chunk.id])


def _check_digest(*, hasher, expected: bytes | None) -> None:
    if expected is not None and hasher.digest() != expected:
        raise ValidationFailed(
            "The body does not match its Content-Digest; nothing was stored. Send it again.",
            code="digest_mismatch",
        )


def _chunks_from_segments(*, session: Session, segments: list[Segment]) -> list[Chunk]:
    return [
        Chunk(
            session=session,
            sequence=segment.sequence,
            size=segment.size,
            sha256=segment.sha256,
            spool_key=segment.spool_key,
            key_id=segment.key_id,
        )
        for segment in segments
    ]


def session_stream_append(
    *, session: Session, body: BinaryIO | None, content_length: int | None
) -> StreamAppendResult:
    """Append the body to the session's byte stream; every full `chunk_size` becomes a chunk."""
    _require_recording(session)
    _claim_ingest_mode(session=session, mode=IngestMode.STREAM)
    stream = SessionStream(session_id=session.pk, chunk_size=session.chunk_size)
    with _lost_to_deletion(session), stream.locked():
        session.refresh_from_db(fields=["status", "stream_offset"])
        _require_recording(session)
        offset = session.stream_offset
        received, segments = stream.append(offset=offset, pieces=_body_pieces(body, limit=None))
        chunks = _chunks_from_segments(session=session, segments=segments)

        def record_append() -> None:
            advanced = Session.objects.filter(
                pk=session.pk, status=SessionStatus.RECORDING, stream_offset=offset
            ).update(stream_offset=offset + received)
            if not advanced or not _count_chunks_in(session=session, chunks=chunks):
                raise _not_recording_now(session)
            Chunk.objects.bulk_create(chunks)
            chunk_ids = [chunk.id for chunk in chunks]
            chunks_received.send(sender=Chunk, session=session, chunk_ids=chunk_ids)

        atomic_retried(record_append)
    session.stream_offset = offset + received
    return StreamAppendResult(
        received=received,
        offset=session.stream_offset,
        chunks=[chunk.sequence for chunk in chunks],
    )


def session_stop(*, session: Session) -> Session:
    """Stop recording: flush the stream's tail into a last chunk, seal the manifest and note
    whether any sequence is missing (`complete`); a session with gaps stops all the same."""
    stream = SessionStream(session_id=session.pk, chunk_size=session.chunk_size)
    with _lost_to_deletion(session), stream.locked():
        session.refresh_from_db()

        def stop() -> None:
            session_services.session_transition(session=session, action="stop")
            if session.ingest_mode == IngestMode.STREAM:
                session_stream_seal(session=session)
            hashes = Chunk.objects.filter(session=session).order_by("sequence")
            session.merkle_root = merkle_root(hashes.values_list("sha256", flat=True)) or ""
            session.complete = chunk_sequences_complete(session_id=session.pk)
            Session.objects.filter(pk=session.pk).update(
                merkle_root=session.merkle_root, complete=session.complete
            )

        atomic_retried(stop)
    session.refresh_from_db()
    return session


def session_stream_seal(*, session: Session) -> Chunk | None:
    """Turn the stream's partly filled tail into the last chunk; the caller is stopping it.

    Runs inside the caller's transaction and stream lock.
    """
    stream = SessionStream(session_id=session.pk, chunk_size=session.chunk_size)
    segment = stream.seal(offset=session.stream_offset)
    if segment is None:
        return None
    (chunk,) = _chunks_from_segments(session=session, segments=[segment])
    chunk.save(force_insert=True)
    tally_apply(session_id=session.pk, tally=tallies.chunks_received(count=1, size=chunk.size))
    chunks_received.send(sender=Chunk, session=session, chunk_ids=[chunk.id])
    return chunk


def session_files_delete(*, session_id: uuid.UUID) -> None:
    """Remove every spooled and stored file of a session (after its rows are gone)."""
    try:
        get_chunk_store().delete_prefix(f"{session_id}/")
    finally:
        get_spool().delete_prefix(f"{session_id}/")


def session_files_delete_on_commit(*, session_id: uuid.UUID) -> None:
    on_commit(lambda: session_files_delete(session_id=session_id))


def chunk_mark_damaged(*, chunk_id: uuid.UUID, reason: str) -> Chunk | None:
    """Mark the chunk `damaged` for `reason`, counted and audited; None if gone or already so."""

    def mark() -> Chunk | None:
        chunk = Chunk.objects.select_for_update().filter(pk=chunk_id).first()
        if chunk is None or chunk.status == ChunkStatus.DAMAGED:
            return None
        source = chunk.status
        chunk.status, chunk.error = ChunkStatus.DAMAGED, reason
        chunk.save(update_fields=["status", "error"])
        tally = tallies.chunk_damaged(source=source, size=chunk.size)
        tally_apply(session_id=chunk.session_id, tally=tally)
        audit_record(
            action=AuditAction.CHUNK_DAMAGED,
            session_id=chunk.session_id,
            sequence=chunk.sequence,
            detail={"reason": reason, "status": source},
        )
        return chunk

    chunk = atomic_retried(mark)
    if chunk is None:
        return None
    logger.error(
        "chunk %s#%s damaged: %s",
        chunk.session_id,
        chunk.sequence,
        reason,
        extra={"session_id": str(chunk.session_id), "sequence": chunk.sequence},
    )
    return chunk


@contextmanager
def _damage_marked() -> Iterator[None]:
    try:
        yield
    except ChunkDamaged as damage:
        chunk_mark_damaged(chunk_id=damage.chunk_id, reason=damage.reason)
        raise


def _pieces_damage_marked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    with _damage_marked():
        yield from pieces


def chunk_read_marking_damage(
    read: Callable[..., Iterable[bytes]], /, **arguments: Any
) -> Iterator[bytes]:
    """`read(**arguments)`; a chunk it finds damaged, at once or later, is marked so first."""
    with _damage_marked():
        pieces = read(**arguments)
    return _pieces_damage_marked(pieces)
