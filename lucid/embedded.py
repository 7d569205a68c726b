"""The embedded default's scheduler: one web worker runs the periodic tasks in a thread.

Without a broker (`make run`) tasks run inline and no beat process runs: the pipeline watchdog,
cleanup and backup would never run, and chunks left waiting when the service was killed would
wait forever. One gunicorn worker at a time, the holder of a lock file under the storage path,
first queues again every chunk the service's earlier run left waiting, then runs the beat
schedule (django-celery-beat's, as the topology's beat does). When it dies, the kernel releases
the lock and another worker takes over.
"""

import fcntl
import logging
import threading
import time
from datetime import UTC, datetime

from celery import beat
from django.conf import settings

from lucid.celery import app as celery_app
from pipeline_app.services import pipeline_recover

logger = logging.getLogger(__name__)

LOCK_NAME = "embedded-scheduler.lock"
RESTART_SECONDS = 5


def scheduler_start(*, service_started: float) -> None:
    """On the embedded default, start the scheduler's thread; `service_started`: epoch seconds."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        return
    started = datetime.fromtimestamp(service_started, UTC)
    threading.Thread(
        target=_schedule, kwargs={"started": started}, name="lucid-scheduler", daemon=True
    ).start()


def _schedule(*, started: datetime) -> None:
    """Once holding the lock: queue what the last run left waiting, then run the beat schedule."""
    with (settings.LUCID_STORAGE_PATH / LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        logger.info("embedded scheduler: this worker runs the periodic tasks")
        recovered = pipeline_recover(before=started)
        if recovered:
            logger.warning("embedded scheduler: %d chunks left waiting were queued", recovered)
        while True:
            try:
                beat.Service(app=celery_app, scheduler_cls=celery_app.conf.beat_scheduler).start()
            except Exception:
                logger.exception("embedded scheduler failed; starting it again")
            time.sleep(RESTART_SECONDS)
