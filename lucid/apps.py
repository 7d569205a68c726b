"""The project package as an app: the `serve` command, the Celery roles' health server, and
the MongoDB series."""

from django.apps import AppConfig
from django.conf import settings
from django.contrib.admin import apps as admin_apps


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


class LucidAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the operator console as its site (`admin.site`)."""

    default = False  # the project's own app config stays this module's default
    default_site = "lucid.sites.LucidAdminSite"
