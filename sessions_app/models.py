"""The recording session: what was recorded, by whom, how it is cut and compressed."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.choices import CompressionAlgorithm
from sessions_app.choices import IngestMode, SessionStatus

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class Session(models.Model):
    """One RDP recording and the running totals of its chunks.

    `complete` is set at stop: true when the chunks are numbered 0…n−1 without a gap (a session
    stopped without chunks has no gap, so it is complete too); false until then.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recording_sessions"
    )
    host = models.CharField(max_length=255, blank=True, default="")
    # The account the session ran under on the recorded host, e.g. `CORP\alice`.
    remote_user = models.CharField(max_length=255, blank=True, default="")
    # The address the RDP client connected from; null when not given.
    client_address = models.GenericIPAddressField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    content_type = models.CharField(max_length=255, default=DEFAULT_CONTENT_TYPE)
    status = models.CharField(
        max_length=16, choices=SessionStatus.choices, default=SessionStatus.CREATED
    )
    chunk_size = models.PositiveIntegerField()
    compression_algorithm = models.CharField(max_length=8, choices=CompressionAlgorithm.choices)
    compression_level = models.SmallIntegerField()
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    legal_hold = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    chunk_count = models.PositiveBigIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0)
    compressed_size = models.PositiveBigIntegerField(default=0)
    chunks_received = models.PositiveBigIntegerField(default=0)
    chunks_processing = models.PositiveBigIntegerField(default=0)
    chunks_stored = models.PositiveBigIntegerField(default=0)
    chunks_failed = models.PositiveBigIntegerField(default=0)
    chunks_damaged = models.PositiveBigIntegerField(default=0)
    backlog_bytes = models.PositiveBigIntegerField(default=0)
    processing_us = models.PositiveBigIntegerField(default=0)
    ingest_mode = models.CharField(
        max_length=8, choices=IngestMode.choices, default=IngestMode.UNDECIDED, blank=True
    )
    stream_offset = models.PositiveBigIntegerField(default=0)
    # The last part of the stream's open segment in an object-store spool ("" on a filesystem).
    stream_part = models.CharField(max_length=32, blank=True, default="")
    last_data_at = models.DateTimeField(null=True, blank=True)
    merkle_root = models.CharField(max_length=64, blank=True, default="")
    complete = models.BooleanField(default=False)
    # The last time mark's time, or the total given at stop; null while no mark says.
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at", "id"]),
            models.Index(fields=["name", "id"]),
            models.Index(fields=["size", "id"]),
            models.Index(fields=["status"]),
            models.Index(fields=["host"]),
            models.Index(fields=["remote_user"]),
            models.Index(fields=["client_address"]),
            models.Index(fields=["status", "stopped_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def compression_ratio(self) -> float | None:
        if not self.size:
            return None
        return self.compressed_size / self.size
