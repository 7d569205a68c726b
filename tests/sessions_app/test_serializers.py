"""The session's read shape, built directly, against what DRF's field machinery would write."""

import pytest
from django.utils import timezone
from rest_framework import serializers

from sessions_app.api.serializers import SessionSerializer
from tests.factories import SessionFactory


@pytest.mark.parametrize("status", ["created", "recording", "stopped", "failed"])
def test_session_representation_equals_drf(db, status):
    session = SessionFactory(
        status=status, metadata={"ticket": "INC-1", "tags": ["a", 1]}, retention_days=30
    )
    serializer = SessionSerializer()
    expected = serializers.ModelSerializer.to_representation(serializer, session)
    assert serializer.to_representation(session) == expected
    assert list(serializer.to_representation(session)) == list(expected)


def test_session_representation_keeps_a_non_utc_time_zone(db):
    session = SessionFactory(status="stopped", retention_days=None, compression_algorithm="lz4")
    serializer = SessionSerializer()
    with timezone.override("Europe/Berlin"):
        expected = serializers.ModelSerializer.to_representation(serializer, session)
        represented = serializer.to_representation(session)
    assert represented == expected
    assert represented["created_at"].endswith(("+01:00", "+02:00"))
