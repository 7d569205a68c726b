"""JSON shapes of what the apps share: audit entries, and datetimes as DRF writes them."""

from datetime import datetime, tzinfo

from rest_framework import serializers

from core.models import AuditEntry


def iso_datetime(value: datetime | None, zone: tzinfo) -> str | None:
    """A datetime exactly as DRF's `DateTimeField` writes it in `zone`: ISO 8601, `Z` for UTC.

    For serializers that build their read shape directly because they answer the hottest routes;
    they look up the current time zone once (`timezone.get_current_timezone()`) for all fields.
    """
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class AuditEntrySerializer(serializers.ModelSerializer):
    """Who did what to which session, when and from which address."""

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "address", "action", "session_id", "sequence", "detail"]
        read_only_fields = fields
