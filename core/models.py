"""What every app shares in the database: running totals and the audit trail."""

import uuid

from django.db import models
from django.utils import timezone

from core.choices import AuditAction


class Counter(models.Model):
    """A running total, such as chunks by status or bytes stored by codec."""

    key = models.CharField(primary_key=True, max_length=100)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


class CounterDelta(models.Model):
    """Changes to running totals from one event, not yet added to the counters (MongoDB only).

    MongoDB aborts one of two transactions that change the same document: events add these
    instead, each its own document, and a fold adds them to the counters in the background.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deltas = models.JSONField()

    def __str__(self) -> str:
        return ", ".join(f"{key} {delta:+d}" for key, delta in self.deltas.items())


class AuditEntry(models.Model):
    """Who did what to which recording, when and from where; never changed, never deleted.

    Sessions are named by id, not by a foreign key, so that entries outlive what they describe.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.CharField(max_length=150)
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    session_id = models.UUIDField(null=True, blank=True)
    sequence = models.PositiveBigIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["at", "id"]),
            models.Index(fields=["session_id", "at"]),
            models.Index(fields=["action", "at"]),
            models.Index(fields=["actor", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"
