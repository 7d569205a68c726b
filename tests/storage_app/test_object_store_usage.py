"""An object store's used space is what the rows count, of LUCID_STORAGE_QUOTA_BYTES."""

import pytest
from django.utils import timezone

from chunks_app.selectors import storage_usage
from chunks_app.storage import get_chunk_store
from core.sizes import MIB
from sessions_app.models import Session
from storage_app.retention import retention_plan
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.support.object_storage import object_storage_use

pytestmark = pytest.mark.django_db(transaction=True)

QUOTA = 10 * CHUNK_SIZE


@pytest.fixture(autouse=True)
def object_storage(settings, s3_service):
    return object_storage_use(settings, s3_service, quota_bytes=QUOTA)


def test_used_bytes_are_the_stored_and_spooled_bytes_the_rows_count_not_a_listing(
    api_client, recording
):
    for sequence in range(3):
        put_chunk(api_client, recording, sequence, screen_like(CHUNK_SIZE, seed=sequence))
    api_client.post(f"/api/v1/sessions/{recording.id}/stop")
    wait_until_settled(recording)
    get_chunk_store().put(f"{recording.id}/not-ours.bin", [b"x" * 5000])

    usage = storage_usage()
    plan = retention_plan(now=timezone.now())

    stored = Session.objects.get(pk=recording.pk).compressed_size
    assert 0 < stored < 3 * CHUNK_SIZE
    assert (usage.used_bytes, usage.free_bytes) == (stored, QUOTA - stored)
    assert (plan.usage.used_bytes, plan.usage.total_bytes) == (stored, QUOTA)
    assert get_chunk_store().used_bytes() == stored + 5000


def test_health_turns_503_when_the_rows_fill_the_quota(
    anonymous_client, api_client, recording, settings
):
    settings.LUCID_HEALTH_MIN_FREE_MB = 1
    settings.LUCID_STORAGE_QUOTA_BYTES = 2 * MIB
    healthy = anonymous_client.get("/health")
    put_chunk(api_client, recording, 0, random_bytes(CHUNK_SIZE))
    wait_until_settled(recording)
    settings.LUCID_STORAGE_QUOTA_BYTES = CHUNK_SIZE

    full = anonymous_client.get("/health")

    assert healthy.status_code == 200
    assert full.status_code == 503
    assert "chunk store full: only 0 MiB free" in full.json()["checks"]["storage"]
