"""The Celery application; tasks run in-process when no broker is configured."""

import os

from celery import Celery
from celery.signals import beat_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lucid.settings")

app = Celery("lucid")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
@beat_init.connect
def _serve_health(**kwargs) -> None:
    """A Celery role answers /health and /metrics on LUCID_HEALTH_PORT when it is set."""
    port = os.environ.get("LUCID_HEALTH_PORT")
    if port:
        from lucid.role_http import role_http_start

        role_http_start(host=os.environ.get("LUCID_BIND", "127.0.0.1"), port=int(port))
