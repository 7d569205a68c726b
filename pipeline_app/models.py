"""A session's pipeline: whether its received chunks are being processed, and the last error."""

from django.db import models

from core.choices import PipelineState
from sessions_app.models import Session


class Pipeline(models.Model):
    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, primary_key=True, related_name="pipeline"
    )
    state = models.CharField(
        max_length=16, choices=PipelineState.choices, default=PipelineState.RUNNING
    )
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"pipeline of {self.session_id} ({self.state})"
