"""The project package as an app: the `serve` command, the Celery roles' health server, and
the MongoDB series."""

from django.apps import AppConfig
from django.conf import settings


class ProjectConfig(AppConfig):
    name = "lucid"
    label = "lucid_project"
    verbose_name = "Lucid project"

    def ready(self) -> None:
        from celery.signals import beat_init, worker_ready

        from lucid.role_http import role_http_serve

        worker_ready.connect(role_http_serve, weak=False)
        beat_init.connect(role_http_serve, weak=False)
        if settings.MONGO_URL:
            from lucid.mongodb_metrics import mongodb_metrics_register

            mongodb_metrics_register()
