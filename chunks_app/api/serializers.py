"""JSON shapes of chunks, stream appends and manifests."""

from rest_framework import serializers

from chunks_app.models import Chunk


class ChunkSerializer(serializers.ModelSerializer):
    """A chunk as clients read it; `sha256` is of the raw bytes."""

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
            "created_at",
            "stored_at",
        ]
        read_only_fields = fields


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
    """A session's chunk hashes and their Merkle root; final once the session is stopped."""

    session = serializers.UUIDField()
    chunks = ManifestChunkSerializer(many=True)
    merkle_root = serializers.CharField(
        allow_null=True,
        help_text="Hex SHA-256 Merkle root: leaves are the chunks' raw 32-byte sha256 digests "
        "in sequence order, a node is sha256(left || right), an odd node pairs with itself.",
    )
