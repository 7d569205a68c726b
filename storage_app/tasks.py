"""Celery tasks of the storage role, run by beat on the schedules in django-celery-beat.

Their names are those they had before they moved here: beat's rows and routes name them.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from core.audit import audit_actor

logger = logging.getLogger(__name__)


@shared_task(name="sessions_app.tasks.cleanup_task")
def cleanup_task() -> str:
    """Retention and orphan cleanup, every LUCID_CLEANUP_INTERVAL_HOURS by default."""
    from storage_app.retention import lucid_cleanup

    with audit_actor("task:cleanup"):
        report = lucid_cleanup(now=timezone.now(), dry_run=False)
    summary = report.summary()
    if report.errors:
        logger.warning("%s; %d failures: %s", summary, len(report.errors), "; ".join(report.errors))
    else:
        logger.info(summary)
    return summary


@shared_task(name="sessions_app.tasks.backup_task")
def backup_task() -> str:
    """A full backup into LUCID_BACKUP_PATH; only the newest LUCID_BACKUP_KEEP archives stay."""
    from storage_app.backup.create import backup_run

    with audit_actor("task:backup"):
        result = backup_run(directory=settings.LUCID_BACKUP_PATH, keep=settings.LUCID_BACKUP_KEEP)
    logger.info(
        "backup: %s sessions, %s chunks → %s", result.session_count, result.chunk_count, result.path
    )
    if result.damaged:
        logger.warning(
            "backup completed with %d damaged chunks, left out and listed in its manifest: %s",
            len(result.damaged),
            "; ".join(f"{c.session_id} chunk {c.sequence}: {c.reason}" for c in result.damaged),
        )
    return str(result.path)
