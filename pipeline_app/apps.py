"""Per-session processing state and the Celery tasks that drive it."""

from django.apps import AppConfig


class PipelineAppConfig(AppConfig):
    name = "pipeline_app"
    verbose_name = "Pipelines"
