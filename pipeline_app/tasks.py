"""Celery tasks of the pipeline: they take ids and call one service."""

import uuid
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from chunks_app.codecs import CodecError
from chunks_app.storage import ChunkStoreError

TRANSIENT_ERRORS = (ChunkStoreError, DatabaseError, OSError)


@shared_task(bind=True, max_retries=None)
def chunk_process_task(self, chunk_id: str) -> str:
    """Process one chunk; transient errors are retried, then the chunk is marked `failed`."""
    from pipeline_app import services

    try:
        return services.chunk_process(chunk_id=uuid.UUID(chunk_id))
    except (services.ChunkDamaged, CodecError) as error:
        services.chunk_mark_failed(chunk_id=uuid.UUID(chunk_id), error=str(error))
        return "failed"
    except TRANSIENT_ERRORS as error:
        if self.request.retries >= settings.LUCID_TASK_MAX_RETRIES:
            services.chunk_mark_failed(chunk_id=uuid.UUID(chunk_id), error=str(error))
            return "failed"
        delay = settings.LUCID_TASK_RETRY_DELAY_SECONDS * 2**self.request.retries
        raise self.retry(exc=error, countdown=delay) from error


@shared_task
def pipeline_watchdog_task() -> int:
    """Queue again chunks stuck in `received` or `processing` (a lost task, a killed worker)."""
    from pipeline_app import services

    stale_after = timedelta(seconds=settings.LUCID_WATCHDOG_STALE_SECONDS)
    return services.pipeline_watchdog(stale_after=stale_after)
