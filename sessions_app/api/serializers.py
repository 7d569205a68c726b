"""JSON shapes of recording sessions."""

from django.utils import timezone
from rest_framework import serializers

from core.api.serializers import iso_datetime
from sessions_app.fields import SESSION_API_FIELDS, SESSION_READ_ONLY_FIELDS
from sessions_app.models import Session

MAX_RETENTION_DAYS = 36500


class SessionSerializer(serializers.ModelSerializer):
    """A recording session as clients read and write it."""

    owner = serializers.CharField(source="owner.username", read_only=True)
    remote_user = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="The account the session ran under on the recorded host, e.g. `CORP\\alice`.",
    )
    client_address = serializers.IPAddressField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="The IPv4 or IPv6 address the RDP client connected from; null (or empty) "
        "when unknown.",
    )
    metadata = serializers.JSONField(required=False, help_text="A JSON object of at most 64 KiB.")
    content_type = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The recording's media type, served with `/recording` (`video/mp4`: playable); "
        "only while the session is `created`.",
    )
    chunk_size = serializers.IntegerField(
        required=False, help_text="Bytes per chunk; only while the session is `created`."
    )
    compression_level = serializers.IntegerField(
        required=False, help_text="Validated per algorithm; only while the session is `created`."
    )
    retention_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, help_text="null = the system default."
    )
    compression_ratio = serializers.FloatField(read_only=True, allow_null=True)
    duration_ms = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The last time mark's `time_ms`, or the total given by `Lucid-Duration-Ms` "
        "at stop; null while unknown.",
    )
    complete = serializers.BooleanField(
        read_only=True,
        help_text="True once stopped with sequences 0…n−1 all present (n: the chunk count; "
        "also when stopped without chunks); false before stop and when a sequence is missing.",
    )

    class Meta:
        model = Session
        fields = SESSION_API_FIELDS
        read_only_fields = SESSION_READ_ONLY_FIELDS
        extra_kwargs = {"compression_algorithm": {"required": False}}

    def validate_retention_days(self, value: int | None) -> int | None:
        """At most `MAX_RETENTION_DAYS`: larger values overflow the column."""
        if value is not None and value > MAX_RETENTION_DAYS:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {MAX_RETENTION_DAYS}.",
                code="max_value",
            )
        return value

    def validate_client_address(self, value: str | None) -> str | None:
        """An empty address is no address."""
        return value or None

    def to_representation(self, session: Session) -> dict:
        """The fields above, built directly: building DRF's fields for each response costs more
        than the session's query. Tests hold it equal to DRF's own output."""
        zone = timezone.get_current_timezone()
        return {
            "id": str(session.id),
            "name": session.name,
            "owner": session.owner.username,
            "host": session.host,
            "remote_user": session.remote_user,
            "client_address": session.client_address,
            "metadata": session.metadata,
            "content_type": session.content_type,
            "status": session.status,
            "chunk_size": session.chunk_size,
            "compression_algorithm": session.compression_algorithm,
            "compression_level": session.compression_level,
            "retention_days": session.retention_days,
            "legal_hold": session.legal_hold,
            "created_at": iso_datetime(session.created_at, zone),
            "updated_at": iso_datetime(session.updated_at, zone),
            "started_at": iso_datetime(session.started_at, zone),
            "stopped_at": iso_datetime(session.stopped_at, zone),
            "chunk_count": session.chunk_count,
            "size": session.size,
            "compressed_size": session.compressed_size,
            "compression_ratio": session.compression_ratio,
            "complete": session.complete,
            "duration_ms": session.duration_ms,
        }
