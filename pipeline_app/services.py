"""Writes of pipelines: pause and resume, queueing chunks, and processing one chunk."""

import hashlib
import logging
import time
import uuid
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from chunks_app.codecs import get_codec
from chunks_app.models import Chunk
from chunks_app.spool import get_spool
from chunks_app.storage import ChunkNotFoundError, get_chunk_store
from core.audit import audit_record
from core.choices import AuditAction, ChunkStatus, CompressionAlgorithm
from core.db import atomic, on_commit
from core.errors import InvalidTransition
from pipeline_app import tasks
from pipeline_app.choices import PipelineState
from pipeline_app.models import Pipeline
from sessions_app import tallies
from sessions_app.models import Session
from sessions_app.tallies import tally_apply

logger = logging.getLogger(__name__)


class ChunkDamaged(Exception):
    """A chunk's spooled bytes are missing or not what was acknowledged: retries cannot help."""


def pipeline_create(*, session: Session) -> Pipeline:
    return Pipeline.objects.create(session=session)


def chunks_enqueue(*, session: Session, chunk_ids: list[uuid.UUID]) -> None:
    """Queue the chunks for processing once the transaction commits, unless paused."""
    if not chunk_ids:
        return
    if Pipeline.objects.filter(session=session, state=PipelineState.PAUSED).exists():
        return
    on_commit(lambda: [tasks.chunk_process_task.delay(str(chunk_id)) for chunk_id in chunk_ids])


def _pipeline_transition(*, session: Session, source: str, target: str, action: str) -> Pipeline:
    with atomic():
        moved = Pipeline.objects.filter(session=session, state=source).update(
            state=target, updated_at=timezone.now()
        )
        pipeline = Pipeline.objects.get(session=session)
        if not moved:
            raise InvalidTransition(action=f"{action} the pipeline", status=pipeline.state)
        audit_record(
            action=AuditAction.PIPELINE_STATE_CHANGED,
            session_id=session.pk,
            detail={"action": action, "from": source, "to": target},
        )
    return pipeline


def pipeline_pause(*, session: Session) -> Pipeline:
    """Stop processing; chunks keep being accepted and wait as `received`."""
    return _pipeline_transition(
        session=session, source=PipelineState.RUNNING, target=PipelineState.PAUSED, action="pause"
    )


def pipeline_resume(*, session: Session) -> Pipeline:
    """Process again, starting with every chunk that waited."""
    with atomic():
        pipeline = _pipeline_transition(
            session=session,
            source=PipelineState.PAUSED,
            target=PipelineState.RUNNING,
            action="resume",
        )
        waiting = Chunk.objects.filter(session=session, status=ChunkStatus.RECEIVED)
        chunks_enqueue(session=session, chunk_ids=list(waiting.values_list("id", flat=True)))
    return pipeline


def pipeline_watchdog(*, stale_after: timedelta, limit: int = 1000) -> int:
    """Queue again the chunks of running pipelines that waited too long; returns how many.

    A chunk `received` long ago lost its task (a broker outage); one `processing` long ago lost
    its worker (killed mid-task). Processing twice is harmless, losing a chunk is not.
    """
    cutoff = timezone.now() - stale_after
    stuck = Chunk.objects.filter(session__pipeline__state=PipelineState.RUNNING).filter(
        Q(status=ChunkStatus.RECEIVED, created_at__lt=cutoff)
        | Q(status=ChunkStatus.PROCESSING, claimed_at__lt=cutoff)
    )
    chunk_ids = list(stuck.order_by("created_at").values_list("id", flat=True)[:limit])
    if chunk_ids:
        logger.warning("watchdog: queueing %d stuck chunks again", len(chunk_ids))
        on_commit(lambda: [tasks.chunk_process_task.delay(str(pk)) for pk in chunk_ids])
    return len(chunk_ids)


def _claim(*, chunk_id: uuid.UUID) -> Chunk | None:
    """Mark the chunk `processing` if it waits and its pipeline runs; None if nothing to do.

    A chunk already `processing` (its worker died, or the task came twice) is taken again.
    """
    runnable = Chunk.objects.filter(pk=chunk_id, session__pipeline__state=PipelineState.RUNNING)
    chunk = runnable.filter(status__in=[ChunkStatus.RECEIVED, ChunkStatus.PROCESSING]).first()
    if chunk is None:
        return None
    now = timezone.now()
    with atomic():
        claimed = runnable.filter(status=ChunkStatus.RECEIVED).update(
            status=ChunkStatus.PROCESSING, attempts=F("attempts") + 1, claimed_at=now
        )
        if claimed:
            tally_apply(session_id=chunk.session_id, tally=tallies.chunk_claimed())
        elif not runnable.filter(status=ChunkStatus.PROCESSING).update(
            attempts=F("attempts") + 1, claimed_at=now
        ):
            return None
    return Chunk.objects.select_related("session").get(pk=chunk_id)


def _read_spooled(chunk: Chunk) -> bytes | None:
    """The chunk's raw bytes from the spool; None if another run finished it meanwhile.

    The spool file was hashed and fsynced when acknowledged; its length is checked here, its
    content by `verify` once stored (hashing it again here would cost the pipeline a tenth).
    """
    try:
        with get_spool().open(chunk.spool_key) as spooled:
            raw = spooled.read()
    except ChunkNotFoundError:
        if not Chunk.objects.filter(pk=chunk.pk, status=ChunkStatus.PROCESSING).exists():
            return None
        raise ChunkDamaged(f"The spooled bytes of chunk {chunk.sequence} are missing.") from None
    if len(raw) != chunk.size:
        raise ChunkDamaged(
            f"The spooled bytes of chunk {chunk.sequence} are {len(raw)} bytes, not "
            f"{chunk.size}; ask the recorder to upload it again."
        )
    return raw


def chunk_process(*, chunk_id: uuid.UUID) -> str:
    """Compress, hash and store one received chunk; safe to run twice. Returns the outcome."""
    chunk = _claim(chunk_id=chunk_id)
    if chunk is None:
        return "skipped"
    started = time.perf_counter()
    raw = _read_spooled(chunk)
    if raw is None:
        return "skipped"
    session = chunk.session
    algorithm = session.compression_algorithm
    stored = get_codec(algorithm).compress(raw, level=session.compression_level)
    if len(stored) >= len(raw):
        algorithm, stored = CompressionAlgorithm.NONE, raw
    stored_sha256 = chunk.sha256 if stored is raw else hashlib.sha256(stored).hexdigest()
    storage_key = f"{session.pk}/{chunk.sequence:012d}.{algorithm}"
    store = get_chunk_store()
    if stored is raw:
        store.put_from(storage_key, source=get_spool(), source_key=chunk.spool_key)
    else:
        store.put(storage_key, [stored])
    seconds = time.perf_counter() - started
    with atomic():
        finished = Chunk.objects.filter(pk=chunk.pk, status=ChunkStatus.PROCESSING).update(
            status=ChunkStatus.STORED,
            algorithm=algorithm,
            compressed_size=len(stored),
            stored_sha256=stored_sha256,
            storage_key=storage_key,
            stored_at=timezone.now(),
            processing_ms=seconds * 1000,
            error="",
        )
        if finished:
            tally = tallies.chunk_stored(
                size=chunk.size, stored_size=len(stored), algorithm=algorithm, seconds=seconds
            )
            tally_apply(session_id=session.pk, tally=tally)
    if not finished:
        if not Chunk.objects.filter(pk=chunk.pk).exists():
            store.delete(storage_key)
        return "skipped"
    get_spool().delete(chunk.spool_key)
    logger.info(
        "chunk %s#%s stored",
        session.pk,
        chunk.sequence,
        extra={
            "session_id": str(session.pk),
            "sequence": chunk.sequence,
            "algorithm": algorithm,
            "size": chunk.size,
            "compressed_size": len(stored),
            "seconds": round(seconds, 4),
        },
    )
    return "stored"


def chunk_mark_failed(*, chunk_id: uuid.UUID, error: str) -> None:
    """Record that processing gave up on the chunk; its spooled bytes stay for a retry."""
    with atomic():
        for source in (ChunkStatus.PROCESSING, ChunkStatus.RECEIVED):
            chunk = Chunk.objects.filter(pk=chunk_id, status=source).first()
            if chunk and Chunk.objects.filter(pk=chunk_id, status=source).update(
                status=ChunkStatus.FAILED, error=error
            ):
                tally = tallies.chunk_failed(source=source, size=chunk.size)
                tally_apply(session_id=chunk.session_id, tally=tally)
                Pipeline.objects.filter(session_id=chunk.session_id).update(
                    last_error=f"chunk {chunk.sequence}: {error}", updated_at=timezone.now()
                )
                logger.warning(
                    "chunk %s#%s failed: %s",
                    chunk.session_id,
                    chunk.sequence,
                    error,
                    extra={"session_id": str(chunk.session_id), "sequence": chunk.sequence},
                )
                return
