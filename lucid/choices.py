"""Choices shared by every app: roles and audited actions."""

from django.db import models


class Role(models.TextChoices):
    """The groups users are put in; a user in none may use no API route."""

    RECORDER = "recorder", "Recorder"
    OPERATOR = "operator", "Operator"
    AUDITOR = "auditor", "Auditor"


class AuditAction(models.TextChoices):
    SESSION_CREATED = "session_created", "Session created"
    SESSION_UPDATED = "session_updated", "Session updated"
    SESSION_DELETED = "session_deleted", "Session deleted"
    SESSION_STATE_CHANGED = "session_state_changed", "Session state changed"
    PIPELINE_STATE_CHANGED = "pipeline_state_changed", "Pipeline state changed"
    CHUNK_DOWNLOADED = "chunk_downloaded", "Chunk downloaded"
    RECORDING_DOWNLOADED = "recording_downloaded", "Recording downloaded"
    MANIFEST_READ = "manifest_read", "Manifest read"
    BACKUP_CREATED = "backup_created", "Backup created"
    BACKUP_RESTORED = "backup_restored", "Backup restored"
    RETENTION_DELETED = "retention_deleted", "Deleted by retention"
    LOGIN_FAILED = "login_failed", "Login failed"
