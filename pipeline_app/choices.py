"""Choices of the pipeline app."""

from django.db import models


class PipelineState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
