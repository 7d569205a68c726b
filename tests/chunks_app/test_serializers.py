"""The chunk's read shape, built directly, against what DRF's field machinery would write."""

import pytest
from rest_framework import serializers

from chunks_app.api.serializers import ChunkSerializer
from chunks_app.models import Chunk
from core.encryption import generate_key_line
from pipeline_app import services as pipeline_services
from tests.chunks_app.helpers import put_chunk, random_bytes, screen_like, wait_until_settled
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_chunk_representation_equals_drf_for_every_state(api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * 1024)
    assert put_chunk(api_client, session, 0, screen_like(50_000)).status_code == 201
    wait_until_settled(session)
    pipeline_services.pipeline_pause(session=session)
    assert put_chunk(api_client, session, 1, random_bytes(1_000)).status_code == 201
    assert put_chunk(api_client, session, 2, screen_like(10)).status_code == 201
    pipeline_services.chunk_mark_failed(
        chunk_id=Chunk.objects.get(session=session, sequence=1).id, error="disk on fire"
    )

    chunks = list(Chunk.objects.filter(session=session).order_by("sequence"))
    assert [chunk.status for chunk in chunks] == ["stored", "failed", "received"]
    serializer = ChunkSerializer()
    for chunk in chunks:
        expected = serializers.ModelSerializer.to_representation(serializer, chunk)
        assert serializer.to_representation(chunk) == expected
        assert list(serializer.to_representation(chunk)) == list(expected)


def test_an_encrypted_chunk_shows_its_key_id_as_drf_would(api_client, user, settings):
    settings.LUCID_ENCRYPTION_KEYS = generate_key_line("key-2025")
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = "key-2025"
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * 1024)
    assert put_chunk(api_client, session, 0, screen_like(50_000)).status_code == 201
    wait_until_settled(session)
    pipeline_services.pipeline_pause(session=session)
    assert put_chunk(api_client, session, 1, random_bytes(1_000)).status_code == 201

    serializer = ChunkSerializer()
    for chunk in Chunk.objects.filter(session=session).order_by("sequence"):
        representation = serializer.to_representation(chunk)
        assert representation["key_id"] == "key-2025"
        assert representation == serializers.ModelSerializer.to_representation(serializer, chunk)
