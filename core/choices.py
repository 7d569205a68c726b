"""Choices shared by every app: roles, audited actions, chunk and pipeline states, compression."""

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
    CHUNK_DAMAGED = "chunk_damaged", "Chunk found damaged"
    CHUNK_REPAIRED = "chunk_repaired", "Chunk repaired from a backup"
    PLAYLIST_ISSUED = "playlist_issued", "Playlist issued"


class ChunkStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    STORED = "stored", "Stored"
    FAILED = "failed", "Failed"
    DAMAGED = "damaged", "Damaged"


class CompressionAlgorithm(models.TextChoices):
    ZSTD = "zstd", "Zstandard"
    LZ4 = "lz4", "LZ4"
    GZIP = "gzip", "gzip"
    NONE = "none", "No compression"

    @property
    def levels(self) -> range:
        return COMPRESSION_LEVELS[self][0]

    @property
    def default_level(self) -> int:
        return COMPRESSION_LEVELS[self][1]

    def level_problem(self, level: object) -> str | None:
        """Why `level` is not one of this algorithm's levels, or None when it is."""
        if isinstance(level, int) and not isinstance(level, bool) and level in self.levels:
            return None
        return (
            f"{self.value} compression level must be an integer from {self.levels.start} "
            f"to {self.levels.stop - 1}, got {level!r}."
        )


# algorithm -> (its levels, its default level)
COMPRESSION_LEVELS: dict[str, tuple[range, int]] = {
    CompressionAlgorithm.ZSTD: (range(1, 23), 6),
    CompressionAlgorithm.LZ4: (range(0, 17), 0),
    CompressionAlgorithm.GZIP: (range(1, 10), 6),
    CompressionAlgorithm.NONE: (range(0, 1), 0),
}


class PipelineState(models.TextChoices):
    """Whether a session's received chunks are processed; an upload is stored on receipt only
    while its session's pipeline runs."""

    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
