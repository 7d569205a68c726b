"""Celery tasks of the pipeline: they take ids and call one service."""

import uuid
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.utils import timezone

from chunks_app.codecs import CodecError
from chunks_app.storage import ChunkStoreError
from core.encryption import KeyNotConfigured
from core.errors import is_storage_full

TRANSIENT_ERRORS = (ChunkStoreError, DatabaseError, OSError)


@shared_task(bind=True, max_retries=None)
def chunk_process_task(self, chunk_id: str) -> str:
    """Process one chunk; transient errors are retried, then (a full disk at once) the chunk
    waits for the watchdog."""
    from pipeline_app import services

    try:
        return services.chunk_process(chunk_id=uuid.UUID(chunk_id))
    except (services.ChunkDamaged, CodecError) as error:
        services.chunk_mark_failed(chunk_id=uuid.UUID(chunk_id), error=str(error))
        return "failed"
    except KeyNotConfigured as error:
        # Only configuring the key helps: the chunk waits for the watchdog, its error says which.
        services.chunk_postpone(chunk_id=uuid.UUID(chunk_id), error=error.message)
        return "postponed"
    except ImproperlyConfigured as error:
        # A store that cannot be built: the same, until the settings are fixed.
        services.chunk_postpone(chunk_id=uuid.UUID(chunk_id), error=str(error))
        return "postponed"
    except TRANSIENT_ERRORS as error:
        # A full disk stays full for longer than the retries last: wait for the watchdog at once.
        if is_storage_full(error) or self.request.retries >= settings.LUCID_TASK_MAX_RETRIES:
            services.chunk_postpone(chunk_id=uuid.UUID(chunk_id), error=str(error))
            return "postponed"
        delay = settings.LUCID_TASK_RETRY_DELAY_SECONDS * 2**self.request.retries
        raise self.retry(exc=error, countdown=delay) from error


@shared_task
def pipeline_watchdog_task() -> int:
    """Queue again waiting chunks no task will take (a lost message, a dead worker, a put-back)."""
    from pipeline_app import services

    stale_after = timedelta(seconds=settings.LUCID_WATCHDOG_STALE_SECONDS)
    return services.pipeline_watchdog(older_than=timezone.now() - stale_after)
