"""A chunk: one numbered piece of a session's bytes, from receipt to durable storage."""

import uuid

from django.db import models
from django.utils import timezone

from core.choices import ChunkStatus, CompressionAlgorithm
from sessions_app.models import Session

MAX_SEQUENCE = 2**31 - 1


class Chunk(models.Model):
    """A piece of a recording; `sha256` is of the raw bytes, `stored_sha256` of the stored ones."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="chunks")
    sequence = models.PositiveBigIntegerField()
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=ChunkStatus.choices, default=ChunkStatus.RECEIVED
    )
    spool_key = models.CharField(max_length=200)
    algorithm = models.CharField(  # noqa: DJ001 - null until stored: no codec was applied yet
        max_length=8, choices=CompressionAlgorithm.choices, null=True, blank=True
    )
    compressed_size = models.PositiveBigIntegerField(null=True, blank=True)
    stored_sha256 = models.CharField(max_length=64, blank=True, default="")
    storage_key = models.CharField(max_length=200, blank=True, default="")
    # The key the bytes kept now (spool file, then stored object) are sealed under; None: plain.
    key_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - None is "not encrypted"
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    processing_ms = models.FloatField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When its task was last handed to the broker; a later `claimed_at` means that task started.
    queued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    stored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["session", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["session", "sequence"], name="chunk_unique_sequence")
        ]
        indexes = [
            models.Index(fields=["session", "status", "sequence"]),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.sequence}"

    @property
    def compression_ratio(self) -> float | None:
        if self.compressed_size is None or not self.size:
            return None
        return self.compressed_size / self.size
