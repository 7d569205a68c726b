"""The Celery application; tasks run in-process when no broker is configured."""

import os

from celery import Celery
from celery.signals import beat_init, task_prerun, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lucid.settings")

app = Celery("lucid")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def _check_encryption_keys(**kwargs) -> None:
    """A worker refuses to start on a bad key configuration, saying what to fix."""
    from core.encryption import key_ring

    key_ring()


@worker_process_init.connect
def _keep_large_buffers(**kwargs) -> None:
    """A pool process that compresses chunks keeps their buffers (core/memory.py)."""
    from core.memory import allocator_keep_large_buffers

    allocator_keep_large_buffers()


@task_prerun.connect
def _database_connections_checked(**kwargs) -> None:
    """A connection kept from the last task is dropped if it broke or outlived CONN_MAX_AGE."""
    from django.db import close_old_connections

    close_old_connections()
