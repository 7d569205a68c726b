"""JSON shapes of what the apps share: audit entries."""

from rest_framework import serializers

from lucid.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    """Who did what to which session, when and from which address."""

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "address", "action", "session_id", "sequence", "detail"]
        read_only_fields = fields
