"""Writes of pipelines: pause, resume and retry, queueing chunks, and processing one chunk."""

import logging
import time
import uuid
from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from chunks_app.models import Chunk
from chunks_app.sealing import chunk_unsealed
from chunks_app.services import chunk_log_stored
from chunks_app.spool import get_spool
from chunks_app.storage import ChunkNotFoundError, get_chunk_store
from chunks_app.stored_form import chunk_stored_form
from core.audit import audit_record
from core.choices import AuditAction, ChunkStatus, PipelineState
from core.db import atomic_retried, on_commit
from core.encryption import AuthenticationFailed
from core.errors import InvalidTransition
from pipeline_app import tasks
from pipeline_app.models import Pipeline
from pipeline_app.selectors import chunk_tasks_in_queue
from sessions_app import tallies
from sessions_app.models import Session
from sessions_app.tallies import tally_apply

logger = logging.getLogger(__name__)

WAITING = (ChunkStatus.RECEIVED, ChunkStatus.PROCESSING)
RECOVERY_BATCH = 1000
# Per status a waiting chunk is set aside as: the tally of the move, and how the log says it.
SET_ASIDE = {
    ChunkStatus.FAILED: (tallies.chunk_failed, "failed"),
    ChunkStatus.RECEIVED: (tallies.chunk_waiting_again, "waits for a retry"),
}


class ChunkDamaged(Exception):
    """A chunk's spooled bytes are missing or not what was acknowledged: retries cannot help."""


def pipeline_create(*, session: Session) -> Pipeline:
    return Pipeline.objects.create(session=session)


def chunks_enqueue(*, chunk_ids: list[uuid.UUID]) -> int:
    """Queue the chunks of running pipelines once the transaction commits; returns how many."""
    if not chunk_ids:
        return 0
    chunks = Chunk.objects.filter(pk__in=chunk_ids)
    sessions = set(chunks.values_list("session_id", flat=True))
    running = Pipeline.objects.filter(session_id__in=sessions, state=PipelineState.RUNNING)
    queued = chunks.filter(
        session_id__in=list(running.values_list("session_id", flat=True))
    ).update(queued_at=timezone.now())
    if queued:
        on_commit(lambda: _chunks_dispatch(chunk_ids=chunk_ids))
    return queued


def _chunks_dispatch(*, chunk_ids: list[uuid.UUID]) -> None:
    """Hand each chunk's task to the broker; those it did not take count as not queued."""
    for index, chunk_id in enumerate(chunk_ids):
        try:
            tasks.chunk_process_task.delay(str(chunk_id))
        except Exception:
            Chunk.objects.filter(pk__in=chunk_ids[index:]).update(queued_at=None)
            raise


def _pipeline_transition(*, session: Session, source: str, target: str, action: str) -> Pipeline:
    def transition() -> Pipeline:
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

    return atomic_retried(transition)


def pipeline_pause(*, session: Session) -> Pipeline:
    """Stop processing; chunks keep being accepted and wait as `received`."""
    return _pipeline_transition(
        session=session, source=PipelineState.RUNNING, target=PipelineState.PAUSED, action="pause"
    )


def pipeline_resume(*, session: Session) -> Pipeline:
    """Process again, starting with every chunk that waited."""

    def resume() -> Pipeline:
        pipeline = _pipeline_transition(
            session=session,
            source=PipelineState.PAUSED,
            target=PipelineState.RUNNING,
            action="resume",
        )
        waiting = Chunk.objects.filter(session=session, status=ChunkStatus.RECEIVED)
        chunks_enqueue(chunk_ids=list(waiting.values_list("id", flat=True)))
        return pipeline

    return atomic_retried(resume)


def pipeline_retry(*, session: Session) -> int:
    """Retry the session's `failed` chunks whose spooled bytes are still there; returns how many."""
    spool = get_spool()
    failed = Chunk.objects.filter(session=session, status=ChunkStatus.FAILED)
    retryable = [chunk for chunk in failed.order_by("sequence") if spool.exists(chunk.spool_key)]

    def retry() -> int:
        retried = []
        for chunk in retryable:
            if Chunk.objects.filter(pk=chunk.pk, status=ChunkStatus.FAILED).update(
                status=ChunkStatus.RECEIVED, queued_at=None
            ):
                tally = tallies.chunk_waiting_again(source=ChunkStatus.FAILED, size=chunk.size)
                tally_apply(session_id=session.pk, tally=tally)
                retried.append(chunk.pk)
        audit_record(
            action=AuditAction.PIPELINE_STATE_CHANGED,
            session_id=session.pk,
            detail={"action": "retry", "chunks": len(retried)},
        )
        chunks_enqueue(chunk_ids=retried)
        return len(retried)

    return atomic_retried(retry)


def pipeline_watchdog(*, older_than: datetime, limit: int = 1000) -> int:
    """Queue again the waiting chunks of running pipelines no task will take; returns how many.

    A chunk not queued since its last claim waits for a task once that claim is older than
    `older_than` (its worker died, or a transient failure put it back) or when it was never
    claimed (its dispatch failed). A chunk queued before `older_than` lost its message if the
    broker's queue holds none. A chunk whose task is still queued is left alone: processing
    twice is harmless, but a flood of duplicate tasks is not.
    """
    waiting = Chunk.objects.filter(
        session__pipeline__state=PipelineState.RUNNING, status__in=WAITING
    ).order_by("created_at")
    not_queued = Q(queued_at__isnull=True) | Q(queued_at__lt=F("claimed_at"))
    claim_over = Q(claimed_at__isnull=True) | Q(claimed_at__lt=older_than)
    chunk_ids = list(waiting.filter(not_queued, claim_over).values_list("id", flat=True)[:limit])
    queued_long_ago = waiting.filter(queued_at__lt=older_than).filter(
        Q(claimed_at__isnull=True) | Q(queued_at__gte=F("claimed_at"))
    )
    if len(chunk_ids) < limit and queued_long_ago.exists() and not chunk_tasks_in_queue():
        lost = queued_long_ago.values_list("id", flat=True)[: limit - len(chunk_ids)]
        chunk_ids.extend(lost)
    if chunk_ids:
        logger.warning("watchdog: queueing %d waiting chunks again", len(chunk_ids))
    return chunks_enqueue(chunk_ids=chunk_ids)


def pipeline_recover(*, before: datetime) -> int:
    """Queue again every waiting chunk no task has taken since `before`; returns how many."""
    recovered = batch = pipeline_watchdog(older_than=before, limit=RECOVERY_BATCH)
    while batch == RECOVERY_BATCH:
        batch = pipeline_watchdog(older_than=before, limit=RECOVERY_BATCH)
        recovered += batch
    return recovered


def _claim(*, chunk_id: uuid.UUID) -> Chunk | None:
    """Mark the chunk `processing` if it waits and its pipeline runs; None if nothing to do.

    A chunk already `processing` (its worker died, or the task came twice) is taken again.
    """
    chunk = Chunk.objects.filter(pk=chunk_id, status__in=WAITING).first()
    if chunk is None:
        return None
    now = timezone.now()
    row = Chunk.objects.filter(pk=chunk_id)
    running = Pipeline.objects.filter(session_id=chunk.session_id, state=PipelineState.RUNNING)

    def claim() -> bool:
        if not running.exists():
            return False
        if row.filter(status=ChunkStatus.RECEIVED).update(
            status=ChunkStatus.PROCESSING, attempts=F("attempts") + 1, claimed_at=now
        ):
            tally_apply(session_id=chunk.session_id, tally=tallies.chunk_claimed())
            return True
        return bool(
            row.filter(status=ChunkStatus.PROCESSING).update(
                attempts=F("attempts") + 1, claimed_at=now
            )
        )

    if not atomic_retried(claim):
        return None
    return Chunk.objects.select_related("session").get(pk=chunk_id)


def _read_spooled(chunk: Chunk) -> bytes | None:
    """The chunk's raw bytes from the spool; None if another run finished it meanwhile.

    The spool file was hashed and fsynced when acknowledged; its length (and seal) is checked
    here, its content by `verify` once stored (hashing it again here would cost the pipeline a
    tenth). A spool file rewritten under another key meanwhile is read from its new name.
    """
    try:
        with get_spool().open(chunk.spool_key) as spooled:
            raw = chunk_unsealed(
                spooled,
                session_id=chunk.session_id,
                sequence=chunk.sequence,
                key_id=chunk.key_id,
                limit=chunk.size + 1,
            )
    except ChunkNotFoundError:
        current = Chunk.objects.filter(pk=chunk.pk, status=ChunkStatus.PROCESSING).first()
        if current is None:
            return None
        if current.spool_key != chunk.spool_key:
            chunk.spool_key, chunk.key_id = current.spool_key, current.key_id
            return _read_spooled(chunk)
        raise ChunkDamaged(f"The spooled bytes of chunk {chunk.sequence} are missing.") from None
    except AuthenticationFailed:
        raise ChunkDamaged(
            f"The spooled bytes of chunk {chunk.sequence} fail authentication; ask the recorder "
            "to upload it again."
        ) from None
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
    form = chunk_stored_form(
        session=session, sequence=chunk.sequence, raw=raw, raw_sha256=chunk.sha256
    )
    store = get_chunk_store()
    if form.content is raw and chunk.key_id == form.key_id:
        store.put_from(form.storage_key, source=get_spool(), source_key=chunk.spool_key)
    else:
        store.put(form.storage_key, form.sealed())
    seconds = time.perf_counter() - started

    def finish() -> bool:
        finished = Chunk.objects.filter(pk=chunk.pk, status=ChunkStatus.PROCESSING).update(
            status=ChunkStatus.STORED,
            **form.chunk_fields(),
            stored_at=timezone.now(),
            processing_ms=seconds * 1000,
            error="",
        )
        if finished:
            tally = tallies.chunk_stored(
                size=chunk.size,
                stored_size=len(form.content),
                algorithm=form.algorithm,
                seconds=seconds,
            )
            tally_apply(session_id=session.pk, tally=tally)
        return bool(finished)

    if not atomic_retried(finish):
        if not Chunk.objects.filter(pk=chunk.pk).exists():
            store.delete(form.storage_key)
        return "skipped"
    get_spool().delete(chunk.spool_key)
    chunk.algorithm, chunk.compressed_size = form.algorithm, len(form.content)
    chunk.processing_ms = seconds * 1000
    chunk_log_stored(chunk=chunk)
    return "stored"


def chunk_mark_failed(*, chunk_id: uuid.UUID, error: str) -> None:
    """Record that processing gave up on the chunk; its spooled bytes stay for a retry."""
    _chunk_set_aside(chunk_id=chunk_id, error=error, status=ChunkStatus.FAILED)


def chunk_postpone(*, chunk_id: uuid.UUID, error: str) -> None:
    """Put the chunk back to wait as `received` after a transient failure, for the watchdog."""
    _chunk_set_aside(chunk_id=chunk_id, error=error, status=ChunkStatus.RECEIVED)


def _chunk_set_aside(*, chunk_id: uuid.UUID, error: str, status: str) -> None:
    """Move a waiting chunk to `status`, not queued, with `error` on it and its pipeline."""
    tally_of, outcome = SET_ASIDE[status]

    def set_aside() -> Chunk | None:
        chunk = Chunk.objects.filter(pk=chunk_id, status__in=WAITING).first()
        if chunk is None or not Chunk.objects.filter(pk=chunk_id, status=chunk.status).update(
            status=status, error=error, queued_at=None
        ):
            return None
        tally_apply(
            session_id=chunk.session_id, tally=tally_of(source=chunk.status, size=chunk.size)
        )
        Pipeline.objects.filter(session_id=chunk.session_id).update(
            last_error=f"chunk {chunk.sequence}: {error}", updated_at=timezone.now()
        )
        return chunk

    chunk = atomic_retried(set_aside)
    if chunk is None:
        return
    logger.warning(
        "chunk %s#%s %s: %s",
        chunk.session_id,
        chunk.sequence,
        outcome,
        error,
        extra={"session_id": str(chunk.session_id), "sequence": chunk.sequence},
    )
