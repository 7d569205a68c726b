"""Choices of the chunks app."""

from django.db import models


class CompressionAlgorithm(models.TextChoices):
    ZSTD = "zstd", "Zstandard"
    LZ4 = "lz4", "LZ4"
    GZIP = "gzip", "gzip"
    NONE = "none", "No compression"


class ChunkStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    STORED = "stored", "Stored"
    FAILED = "failed", "Failed"
