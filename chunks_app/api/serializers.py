"""JSON shapes of chunks, stream appends and manifests."""

from django.utils import timezone
from rest_framework import serializers

from chunks_app.models import Chunk
from chunks_app.selectors import MISSING_SEQUENCES_SHOWN
from core.api.serializers import iso_datetime


class ChunkSerializer(serializers.ModelSerializer):
    """A chunk as clients read it; `sha256` is of the raw bytes, `key_id` the key its kept
    bytes are encrypted under (null: not encrypted)."""

    compression_ratio = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Chunk
        fields = [
            "sequence",
            "size",
            "compressed_size",
            "algorithm",
            "compression_ratio",
            "sha256",
            "status",
            "error",
            "key_id",
            "created_at",
            "stored_at",
        ]
        read_only_fields = fields

    def to_representation(self, chunk: Chunk) -> dict:
        """The fields above, built directly: DRF's per-field dispatch costs a chunk list page
        (50 rows) several times the database's work. Tests hold it equal to DRF's own output."""
        zone = timezone.get_current_timezone()
        return {
            "sequence": chunk.sequence,
            "size": chunk.size,
            "compressed_size": chunk.compressed_size,
            "algorithm": chunk.algorithm,
            "compression_ratio": chunk.compression_ratio,
            "sha256": chunk.sha256,
            "status": chunk.status,
            "error": chunk.error,
            "key_id": chunk.key_id,
            "created_at": iso_datetime(chunk.created_at, zone),
            "stored_at": iso_datetime(chunk.stored_at, zone),
        }


class StreamAppendSerializer(serializers.Serializer):
    """What a stream append did: bytes taken, the stream's length, chunks it completed."""

    received = serializers.IntegerField()
    offset = serializers.IntegerField()
    chunks = serializers.ListField(child=serializers.IntegerField())


class ManifestChunkSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()


class ManifestSerializer(serializers.Serializer):
    """A session's chunk hashes, their Merkle root and its gaps; final once it is stopped."""

    session = serializers.UUIDField()
    chunks = ManifestChunkSerializer(many=True)
    merkle_root = serializers.CharField(
        allow_null=True,
        help_text="Hex SHA-256 Merkle root: leaves are the chunks' raw 32-byte sha256 digests "
        "in sequence order, a node is sha256(left || right), an odd node pairs with itself.",
    )
    complete = serializers.BooleanField(
        help_text="True once the session is stopped with sequences 0…n−1 all present."
    )
    missing_sequences = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Sequences missing below the highest one, ascending; at most the first "
        f"{MISSING_SEQUENCES_SHOWN:,}.",
    )
    missing_count = serializers.IntegerField(
        help_text="How many sequences are missing below the highest one, all of them."
    )


class ChunksByStatusSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    processing = serializers.IntegerField()
    stored = serializers.IntegerField()
    failed = serializers.IntegerField()
    damaged = serializers.IntegerField()


class SessionsByStatusSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    recording = serializers.IntegerField()
    paused = serializers.IntegerField()
    stopped = serializers.IntegerField()
    failed = serializers.IntegerField()


class SessionStatisticsSerializer(serializers.Serializer):
    """One session's totals; `duration_seconds` runs until stop."""

    chunk_count = serializers.IntegerField()
    size = serializers.IntegerField()
    compressed_size = serializers.IntegerField()
    compression_ratio = serializers.FloatField(allow_null=True)
    chunks_by_status = ChunksByStatusSerializer()
    duration_seconds = serializers.FloatField(allow_null=True)
    average_processing_ms = serializers.FloatField(allow_null=True)


class StorageSerializer(serializers.Serializer):
    path = serializers.CharField()
    used_bytes = serializers.IntegerField()
    free_bytes = serializers.IntegerField()


class SystemStatisticsSerializer(serializers.Serializer):
    """Totals over every session; `storage` is the chunk store's."""

    session_count = serializers.IntegerField()
    sessions_by_status = SessionsByStatusSerializer()
    chunk_count = serializers.IntegerField()
    chunks_by_status = ChunksByStatusSerializer()
    size = serializers.IntegerField()
    compressed_size = serializers.IntegerField()
    compression_ratio = serializers.FloatField(allow_null=True)
    backlog_bytes = serializers.IntegerField()
    storage = StorageSerializer()


class TimeMarkSerializer(serializers.Serializer):
    """Media time `time_ms` begins at byte `offset` of the recording."""

    time_ms = serializers.IntegerField()
    offset = serializers.IntegerField(
        allow_null=True, help_text="Null while chunks uploaded before it are missing."
    )


class TimelineSerializer(serializers.Serializer):
    """A page of the recording's time marks, in time order."""

    duration_ms = serializers.IntegerField(allow_null=True)
    marks = TimeMarkSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
