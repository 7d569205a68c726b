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
    # Where its first byte lies in the recording; null until every chunk before it is known.
    offset = models.PositiveBigIntegerField(null=True, blank=True)
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
        # By the column: ordering by `session` would join every query to sessions for theirs.
        ordering = ["session_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["session", "sequence"], name="chunk_unique_sequence")
        ]
        indexes = [
            models.Index(fields=["session", "status", "sequence"]),
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["session", "offset"], name="chunk_session_offset_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.sequence}"

    @property
    def compression_ratio(self) -> float | None:
        if self.compressed_size is None or not self.size:
            return None
        return self.compressed_size / self.size


class TimeMark(models.Model):
    """Where media time `time_ms` begins in a session's bytes: byte `position` of chunk `sequence`.

    A session's marks rise in time as they rise in place, so each time and each place is marked
    once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="time_marks")
    sequence = models.PositiveBigIntegerField()
    position = models.PositiveBigIntegerField()
    time_ms = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["session_id", "time_ms"]
        constraints = [
            models.UniqueConstraint(fields=["session", "time_ms"], name="time_mark_unique_time"),
            models.UniqueConstraint(
                fields=["session", "sequence", "position"], name="time_mark_unique_place"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}@{self.time_ms}ms"
