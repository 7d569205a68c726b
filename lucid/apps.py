"""The project package as an app: the `serve` command and the Celery roles' health server."""

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "lucid"
    label = "lucid_project"
    verbose_name = "Lucid project"

    def ready(self) -> None:
        from celery.signals import beat_init, worker_ready

        from lucid.role_http import role_http_serve

        worker_ready.connect(role_http_serve, weak=False)
        beat_init.connect(role_http_serve, weak=False)
