"""Writes of chunks: durable ingest, sealing at stop, marking damage, a session's files."""

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from chunks_app.merkle import merkle_root
from chunks_app.models import MAX_SEQUENCE, Chunk, TimeMark
from chunks_app.sealing import active_key_id, chunk_seal, upload_spool_key
from chunks_app.selectors import ChunkDamaged, chunk_sequences_complete
from chunks_app.signals import chunks_received
from chunks_app.spool import Segment, get_spool, session_stream, session_stream_lock
from chunks_app.storage import ChunkStoreError, get_chunk_store
from chunks_app.stored_form import chunk_stored_form
from core.audit import audit_record
from core.choices import AuditAction, ChunkStatus, PipelineState
from core.db import atomic_retried, lock_rows, on_commit, write_alone
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
from sessions_app.selectors import session_get
from sessions_app.tallies import tally_apply

READ_PIECE = 1024 * 1024
# The columns of a session an append reads, under its stream's lock.
STREAM_APPEND_FIELDS = ("status", "ingest_mode", "chunk_size", "stream_offset", "stream_part")
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


def _session_gone(session_id: uuid.UUID) -> NotFound:
    return NotFound(f"No session with id '{session_id}'.")


class StreamConflict(Conflict):
    """A concurrent append to the same stream was recorded first; nothing of this one was."""

    default_code = "stream_conflict"


def _stream_conflict_check(session: Session, *, offset: int, part: str) -> None:
    """Raise `StreamConflict` if a recording session's stream moved on from `offset`, `part`."""
    recording = Session.objects.filter(pk=session.pk, status=SessionStatus.RECORDING)
    current = recording.values_list("stream_offset", "stream_part").first()
    if current is not None and current != (offset, part):
        end = current[0]
        raise StreamConflict(
            "Another append to this session's stream was recorded first (two writers at one "
            f"stream); nothing of this one was. The stream now ends at byte {end}: send the "
            "bytes again if they belong after it.",
            extra={"offset": end},
        )


def _not_recording_now(session: Session) -> Conflict | NotFound:
    """The error for a session that stopped recording (or vanished) while we were writing."""
    try:
        session.refresh_from_db(fields=["status"])
    except Session.DoesNotExist:
        return _session_gone(session.pk)
    return _not_recording(session)


def _require_recording(session: Session) -> None:
    if session.status != SessionStatus.RECORDING:
        raise _not_recording(session)


@contextmanager
def _lost_to_deletion(session_id: uuid.UUID) -> Iterator[None]:
    """A write that fails because its session was deleted meanwhile answers 404, and removes
    the files it made after the deletion removed the session's."""
    try:
        yield
    except (ApplicationError, StorageUnavailable, ObjectDoesNotExist):
        if Session.objects.filter(pk=session_id).exists():
            raise
        session_files_delete(session_id=session_id)
        raise _session_gone(session_id) from None


def _claim_ingest_mode(*, session: Session, mode: str) -> None:
    """Fix the session's ingest style on first use; the other style is then a conflict."""
    if session.ingest_mode == mode:
        return
    undecided = Session.objects.filter(pk=session.pk, ingest_mode=IngestMode.UNDECIDED)
    if session.ingest_mode == IngestMode.UNDECIDED and undecided.update(ingest_mode=mode):
        session.ingest_mode = mode
        return
    try:
        session.refresh_from_db(fields=["ingest_mode"])
    except Session.DoesNotExist:
        raise _session_gone(session.pk) from None
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
    time_ms: int | None = None,
) -> tuple[Chunk, bool]:
    """Spool an uploaded chunk durably and queue it; returns the chunk and whether it is new.

    The same bytes under an existing sequence are an idempotent retry; other bytes conflict.
    `content_length` is None for a chunked body, whose size is known once read. `time_ms`
    marks the media time of the chunk's first byte.
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
    # The chunk under this sequence, if any, and the one before, whose end is where this begins.
    near = Chunk.objects.filter(session=session, sequence__in=(sequence - 1, sequence))
    nearby = {chunk.sequence: chunk for chunk in near.order_by()}
    existing = nearby.get(sequence)
    if existing is not None:
        for _ in received:
            pass
        _check_digest(hasher=hasher, expected=expected_sha256)
        sha256 = hasher.hexdigest()
        chunk = _same_or_conflict(existing=existing, size=received.size, sha256=sha256)
        if time_ms is not None:
            atomic_retried(lambda: _time_mark_add_locked(chunk=chunk, time_ms=time_ms))
        return chunk, False

    with _lost_to_deletion(session.pk):
        if _stores_on_receipt(session, content_length=content_length):
            chunk = _chunk_store_on_receipt(
                session=session, sequence=sequence, received=received, expected=expected_sha256
            )
        else:
            chunk = _chunk_spool(session=session, sequence=sequence, pieces=received)
        chunk.size = received.size
        chunk.sha256 = hasher.hexdigest()
        chunk.offset = 0 if sequence == 0 else _end_of(nearby.get(sequence - 1))
        try:
            _check_digest(hasher=hasher, expected=expected_sha256)
            atomic_retried(lambda: _record_upload(session=session, chunk=chunk, time_ms=time_ms))
        except IntegrityError:
            _chunk_files_drop(chunk)
            existing = Chunk.objects.filter(session=session, sequence=sequence).first()
            if existing is None:
                raise _not_recording_now(session) from None
            return _same_or_conflict(existing=existing, size=chunk.size, sha256=chunk.sha256), False
        except BaseException:
            _chunk_files_drop(chunk)
            raise
    chunk_offsets_settle(session_id=session.pk)
    return chunk, True


def _stores_on_receipt(session: Session, *, content_length: int | None) -> bool:
    """Whether an upload is compressed and stored in its request, instead of spooled for the
    pipeline: one of up to LUCID_STORE_ON_RECEIPT_MAX_KB (a chunked one, if any chunk of the
    session is) while the session's pipeline runs (as loaded with the session). Its 201 then
    follows the stored file's fsync, as it would the spool's."""
    largest = session.chunk_size if content_length is None else content_length
    if largest > settings.LUCID_STORE_ON_RECEIPT_MAX_KB * 1024:
        return False
    try:
        return session.pipeline.state == PipelineState.RUNNING
    except ObjectDoesNotExist:
        return False


def _chunk_spool(*, session: Session, sequence: int, pieces: Iterable[bytes]) -> Chunk:
    """A new `received` chunk whose bytes are spooled, durably, for the pipeline."""
    key_id = active_key_id()
    chunk = Chunk(id=uuid.uuid4(), session=session, sequence=sequence, key_id=key_id)
    chunk.spool_key = upload_spool_key(session_id=session.pk, chunk_id=chunk.id, key_id=key_id)
    sealed = chunk_seal(pieces, session_id=session.pk, sequence=sequence, key_id=key_id)
    get_spool().put(chunk.spool_key, sealed, if_absent=True)
    return chunk


def _chunk_store_on_receipt(
    *, session: Session, sequence: int, received: _ChunkBody, expected: bytes | None
) -> Chunk:
    """A new `stored` chunk: the upload compressed as the pipeline would, written durably to
    the chunk store, never to the spool.

    The stored name is the chunk's own, so it is written only if absent: a file already there
    (a concurrent upload of the sequence, or one that died before its row) is left alone and
    this upload is spooled instead, for the pipeline to store; so is one the store fails to
    take (or a store that cannot be built), for the pipeline to retry and report.
    """
    raw = b"".join(received)
    _check_digest(hasher=received.hasher, expected=expected)
    started = time.perf_counter()
    form = chunk_stored_form(
        session=session, sequence=sequence, raw=raw, raw_sha256=received.hasher.hexdigest()
    )
    try:
        get_chunk_store().put(form.storage_key, form.sealed(), if_absent=True)
    except (ChunkStoreError, ImproperlyConfigured):
        return _chunk_spool(session=session, sequence=sequence, pieces=[raw])
    now = timezone.now()
    return Chunk(
        id=uuid.uuid4(),
        session=session,
        sequence=sequence,
        status=ChunkStatus.STORED,
        **form.chunk_fields(),
        attempts=1,
        queued_at=now,
        claimed_at=now,
        stored_at=now,
        processing_ms=(time.perf_counter() - started) * 1000,
    )


def _chunk_files_drop(chunk: Chunk) -> None:
    """Remove what a failed upload wrote: its spool file; its stored file unless another upload
    of the sequence was recorded, whose pipeline may store under that name."""
    if chunk.spool_key:
        get_spool().delete(chunk.spool_key)
    elif not Chunk.objects.filter(session_id=chunk.session_id, sequence=chunk.sequence).exists():
        get_chunk_store().delete(chunk.storage_key)


def _upload_tally(chunk: Chunk) -> tallies.Tally:
    received = tallies.chunks_received(count=1, size=chunk.size)
    if chunk.status != ChunkStatus.STORED:
        return received
    stored = tallies.chunk_stored(
        size=chunk.size,
        stored_size=chunk.compressed_size,
        algorithm=chunk.algorithm,
        seconds=chunk.processing_ms / 1000,
    )
    return tallies.tally_merge(received, tallies.chunk_claimed(), stored)


def _record_upload(*, session: Session, chunk: Chunk, time_ms: int | None) -> None:
    recording = Q(status=SessionStatus.RECORDING)
    if not tally_apply(session_id=session.pk, tally=_upload_tally(chunk), only_if=recording):
        raise _not_recording_now(session)
    chunk.save(force_insert=True)
    if time_ms is not None:
        _time_mark_add(session=session, sequence=chunk.sequence, position=0, time_ms=time_ms)
    if chunk.status == ChunkStatus.STORED:
        chunk_log_stored(chunk=chunk)
    else:
        chunks_received.send(sender=Chunk, session=session, chunk_ids=[chunk.id])


def chunk_log_stored(*, chunk: Chunk) -> None:
    """Log that the chunk's bytes are stored, with what they became."""
    logger.info(
        "chunk %s#%s stored",
        chunk.session_id,
        chunk.sequence,
        extra={
            "session_id": str(chunk.session_id),
            "sequence": chunk.sequence,
            "algorithm": chunk.algorithm,
            "size": chunk.size,
            "compressed_size": chunk.compressed_size,
            "seconds": round(chunk.processing_ms / 1000, 4),
        },
    )


def _end_of(chunk: Chunk | None) -> int | None:
    """Where the chunk after `chunk` begins, if `chunk` is there and placed."""
    if chunk is None or chunk.offset is None:
        return None
    return chunk.offset + chunk.size


def _offset_after(*, session_id: uuid.UUID, sequence: int) -> int | None:
    """Where chunk `sequence` begins, if the chunk before it is there and placed."""
    if sequence == 0:
        return 0
    before = Chunk.objects.filter(session_id=session_id, sequence=sequence - 1)
    return _end_of(before.only("offset", "size").first())


def chunk_offsets_settle(*, session_id: uuid.UUID) -> None:
    """Place the chunks that follow, without a gap, the last placed chunk.

    Uploads that arrive out of order, or commit in another order than they began, leave chunks
    unplaced; each upload settles what it can once it committed, and stop places the rest.
    Every offset is the sum of the sizes before it, so concurrent settlements agree. Chunks to
    place are placed in a transaction: on MongoDB a write outside one waits, unbounded, behind
    every transaction that holds one of the chunks, where a transaction's conflict is retried
    here. With none to place (uploads in order), it is one read.
    """
    unplaced = Chunk.objects.filter(session_id=session_id, offset__isnull=True)
    if not unplaced.exists():
        return

    def place() -> None:
        first = unplaced.order_by("sequence").values_list("sequence", flat=True).first()
        if first is None:
            return
        position = _offset_after(session_id=session_id, sequence=first)
        if position is None:
            return
        placed = []
        for chunk in unplaced.order_by("sequence").only("pk", "sequence", "size").iterator():
            if chunk.sequence != first + len(placed):
                break
            chunk.offset = position
            position += chunk.size
            placed.append(chunk)
        Chunk.objects.bulk_update(placed, ["offset"], batch_size=1000)

    atomic_retried(place)


def chunk_offsets_place(*, session_id: uuid.UUID, across_gaps: bool) -> list[str]:
    """Give each chunk its offset in the recording as it is now, the chunks there in sequence
    order; returns their sha256s in that order. `across_gaps` for a session that takes no more
    chunks; otherwise the chunks after a missing sequence are left unplaced."""
    chunks = Chunk.objects.filter(session_id=session_id).order_by("sequence")
    hashes, moved, position = [], [], 0
    columns = ("pk", "sequence", "size", "offset", "sha256")
    for index, chunk in enumerate(chunks.only(*columns).iterator(chunk_size=2000)):
        hashes.append(chunk.sha256)
        offset = position if across_gaps or chunk.sequence == index else None
        if chunk.offset != offset:
            chunk.offset = offset
            moved.append(chunk)
        position += chunk.size
    Chunk.objects.bulk_update(moved, ["offset"], batch_size=1000)
    return hashes


class TimeMarkConflict(Conflict):
    """A time mark that contradicts the session's others: time must rise with the place."""

    default_code = "time_mark_conflict"


def _mark_json(mark: TimeMark | None) -> dict | None:
    if mark is None:
        return None
    return {"time_ms": mark.time_ms, "sequence": mark.sequence, "position": mark.position}


def _time_mark_add(*, session: Session, sequence: int, position: int, time_ms: int) -> None:
    """Mark media time `time_ms` at byte `position` of chunk `sequence`, inside the caller's
    transaction, which holds the session's row; the same mark again changes nothing."""
    marks = TimeMark.objects.filter(session_id=session.pk)
    here = Q(sequence=sequence, position=position)
    same = marks.filter(here).first()
    if same is not None and same.time_ms == time_ms:
        return
    before = Q(sequence__lt=sequence) | Q(sequence=sequence, position__lt=position)
    after = Q(sequence__gt=sequence) | Q(sequence=sequence, position__gt=position)
    previous = marks.filter(before).order_by("-sequence", "-position").first()
    following = marks.filter(after).order_by("sequence", "position").first()
    if (
        same is not None
        or (previous is not None and previous.time_ms >= time_ms)
        or (following is not None and following.time_ms <= time_ms)
    ):
        raise TimeMarkConflict(
            f"A time mark of {time_ms} ms here contradicts the session's marks: times must "
            "rise with the byte offset, and a place is marked once.",
            extra={
                "time_ms": time_ms,
                "marked_here": _mark_json(same),
                "previous": _mark_json(previous),
                "next": _mark_json(following),
            },
        )
    TimeMark.objects.create(session=session, sequence=sequence, position=position, time_ms=time_ms)
    if following is None:
        Session.objects.filter(pk=session.pk).update(duration_ms=time_ms)
        session.duration_ms = time_ms


def _time_mark_add_locked(*, chunk: Chunk, time_ms: int) -> None:
    """Mark an existing chunk's first byte, holding the session's row against other marks."""
    session = lock_rows(Session.objects.filter(pk=chunk.session_id), updated_at=timezone.now())
    row = session.first()
    if row is None:
        raise _session_gone(chunk.session_id)
    _time_mark_add(session=row, sequence=chunk.sequence, position=0, time_ms=time_ms)


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
            offset=segment.sequence * session.chunk_size,
        )
        for segment in segments
    ]


def session_stream_append(
    *,
    session_id: uuid.UUID,
    body: BinaryIO | None,
    content_length: int | None,
    time_ms: int | None = None,
) -> StreamAppendResult:
    """Append the body to the session's byte stream; every full `chunk_size` becomes a chunk.

    `time_ms` marks the media time of the append's first byte. The session is read once, under
    the stream's lock, where its stream position cannot move.
    """
    with _lost_to_deletion(session_id), session_stream_lock(session_id=session_id):
        session = session_get(session_id=session_id, fields=STREAM_APPEND_FIELDS)
        _require_recording(session)
        _claim_ingest_mode(session=session, mode=IngestMode.STREAM)
        stream = session_stream(session_id=session.pk, chunk_size=session.chunk_size)
        offset, part = session.stream_offset, session.stream_part
        try:
            appended = stream.append(
                offset=offset, part=part, pieces=_body_pieces(body, limit=None)
            )
        except ChunkStoreError:
            _stream_conflict_check(session, offset=offset, part=part)
            raise
        received, segments = appended.received, appended.segments
        if time_ms is not None and not received:
            raise ValidationFailed(
                "An append without bytes marks no time; send Lucid-Time-Ms with the bytes it "
                "marks.",
                code="invalid_time_mark",
            )
        chunks = _chunks_from_segments(session=session, segments=segments)

        def record_append() -> None:
            advanced = Session.objects.filter(
                pk=session.pk, status=SessionStatus.RECORDING, stream_offset=offset
            ).filter(stream_part=part)
            now = timezone.now()
            if not advanced.update(
                stream_offset=offset + received,
                stream_part=appended.part,
                last_data_at=now,
                updated_at=now,
            ):
                _stream_conflict_check(session, offset=offset, part=part)
                raise _not_recording_now(session)
            if time_ms is not None:
                sequence, position = divmod(offset, session.chunk_size)
                _time_mark_add(
                    session=session, sequence=sequence, position=position, time_ms=time_ms
                )
            if not chunks:
                return
            if not _count_chunks_in(session=session, chunks=chunks):
                raise _not_recording_now(session)
            Chunk.objects.bulk_create(chunks)
            chunk_ids = [chunk.id for chunk in chunks]
            chunks_received.send(sender=Chunk, session=session, chunk_ids=chunk_ids)
            replaced = [key for segment in segments for key in segment.replaced]
            on_commit(lambda: stream.discard(keys=replaced))

        if chunks or time_ms is not None:
            atomic_retried(record_append)
        else:
            write_alone(record_append)
    session.stream_offset, session.stream_part = offset + received, appended.part
    return StreamAppendResult(
        received=received,
        offset=session.stream_offset,
        chunks=[chunk.sequence for chunk in chunks],
    )


def session_stop(*, session: Session, duration_ms: int | None = None) -> Session:
    """Stop recording: flush the stream's tail into a last chunk, place every chunk in the
    recording, seal the manifest and note whether any sequence is missing (`complete`); a
    session with gaps stops all the same. `duration_ms` is the recording's total duration."""
    stream = session_stream(session_id=session.pk, chunk_size=session.chunk_size)
    with _lost_to_deletion(session.pk), stream.locked():
        session.refresh_from_db()

        def stop() -> None:
            session_services.session_transition(session=session, action="stop")
            sealed: dict[str, object] = {}
            if duration_ms is not None:
                _duration_check(session=session, duration_ms=duration_ms)
                sealed["duration_ms"] = duration_ms
            if session.ingest_mode == IngestMode.STREAM:
                session_stream_seal(session=session)
            sealed["merkle_root"] = (
                merkle_root(chunk_offsets_place(session_id=session.pk, across_gaps=True)) or ""
            )
            sealed["complete"] = chunk_sequences_complete(session_id=session.pk)
            Session.objects.filter(pk=session.pk).update(**sealed)

        atomic_retried(stop)
    session.refresh_from_db()
    return session


def _duration_check(*, session: Session, duration_ms: int) -> None:
    last = TimeMark.objects.filter(session_id=session.pk).order_by("-time_ms").first()
    if last is not None and duration_ms < last.time_ms:
        raise TimeMarkConflict(
            f"The duration of {duration_ms} ms ends before the last time mark ({last.time_ms} ms).",
            extra={"duration_ms": duration_ms, "previous": _mark_json(last)},
        )


def session_stream_seal(*, session: Session) -> Chunk | None:
    """Turn the stream's partly filled tail into the last chunk; the caller is stopping it.

    Runs inside the caller's transaction and stream lock.
    """
    stream = session_stream(session_id=session.pk, chunk_size=session.chunk_size)
    session.refresh_from_db(fields=["stream_offset", "stream_part"])
    segment = stream.seal(offset=session.stream_offset, part=session.stream_part)
    if segment is None:
        return None
    (chunk,) = _chunks_from_segments(session=session, segments=[segment])
    chunk.save(force_insert=True)
    tally_apply(session_id=session.pk, tally=tallies.chunks_received(count=1, size=chunk.size))
    chunks_received.send(sender=Chunk, session=session, chunk_ids=[chunk.id])
    on_commit(lambda: stream.discard(keys=segment.replaced))
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
