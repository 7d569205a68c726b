"""Per-session processing state and the Celery tasks that drive it."""

from django.apps import AppConfig


class PipelineAppConfig(AppConfig):
    name = "pipeline_app"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        from pipeline_app import receivers  # noqa: F401 - connects the session and chunk receivers
