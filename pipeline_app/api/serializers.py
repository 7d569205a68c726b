"""JSON shape of a session's pipeline."""

from rest_framework import serializers

from core.choices import PipelineState


class PipelineSerializer(serializers.Serializer):
    """The processing of a session's chunks: state, counts by status, bytes waiting."""

    state = serializers.ChoiceField(choices=PipelineState.choices)
    received = serializers.IntegerField()
    processing = serializers.IntegerField()
    stored = serializers.IntegerField()
    failed = serializers.IntegerField()
    damaged = serializers.IntegerField()
    backlog_bytes = serializers.IntegerField(help_text="Raw bytes received but not yet stored.")
    last_error = serializers.CharField(allow_blank=True)
