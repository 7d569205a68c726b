"""Choices of the sessions app."""

from django.db import models


class SessionStatus(models.TextChoices):
    CREATED = "created", "Created"
    RECORDING = "recording", "Recording"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


class IngestMode(models.TextChoices):
    """How a session's bytes arrive; a session uses one."""

    UNDECIDED = "", "Undecided"
    CHUNKS = "chunks", "Chunk uploads"
    STREAM = "stream", "Byte stream"
