"""GET /health: each check, 200 when the required ones pass, 503 when one fails and back."""

import pytest

from chunks_app.storage import ChunkStoreError, get_chunk_store
from core.encryption import generate_key_line
from tests.support.faults import remains

pytestmark = pytest.mark.django_db


def test_healthy_service_answers_200_with_every_check(anonymous_client, settings):
    response = anonymous_client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] == "ok"
    assert body["checks"]["cache"] == "ok"
    expected_broker = "disabled" if settings.CELERY_TASK_ALWAYS_EAGER else "ok"
    assert body["checks"]["broker"] == expected_broker


def test_unwritable_chunk_store_turns_503_and_back(anonymous_client, chunk_store_faults):
    refused = f"Could not write a probe in {get_chunk_store().location}: Permission denied."
    chunk_store_faults.fail("check_writable", ChunkStoreError(refused))

    broken = anonymous_client.get("/health")

    chunk_store_faults.clear()
    healed = anonymous_client.get("/health")
    assert broken.status_code == 503
    assert broken.json()["status"] == "fail"
    assert refused in broken.json()["checks"]["storage"]
    assert healed.status_code == 200


@pytest.mark.filesystem_only("a file where the chunk store's directory goes")
def test_a_file_in_place_of_the_chunk_store_directory_turns_503_and_back(
    anonymous_client, storage_paths
):
    store = storage_paths.LUCID_CHUNK_STORE_PATH
    store.mkdir(parents=True, exist_ok=True)
    moved = store.with_name("chunks-moved")
    store.rename(moved)
    store.write_bytes(b"not a directory")

    broken = anonymous_client.get("/health")

    store.unlink()
    moved.rename(store)
    healed = anonymous_client.get("/health")
    assert broken.status_code == 503
    assert broken.json()["status"] == "fail"
    assert "chunks" in broken.json()["checks"]["storage"]
    assert healed.status_code == 200


def test_low_free_space_turns_503_and_says_which_store_is_full_and_what_to_do(
    anonymous_client, settings
):
    settings.LUCID_HEALTH_MIN_FREE_MB = 2**50

    response = anonymous_client.get("/health")

    assert response.status_code == 503
    storage = response.json()["checks"]["storage"]
    assert storage.startswith("chunk store full: only ")
    assert get_chunk_store().location in storage
    assert "chunks wait until there is room" in storage
    assert "spool full: only " in storage
    assert storage.endswith("Free space (delete sessions, run cleanup) or grow the disk.")


def test_unreachable_broker_turns_503(anonymous_client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = anonymous_client.get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"] != "ok"


def test_health_needs_no_credentials_and_leaves_no_files(anonymous_client):
    anonymous_client.get("/health")

    assert remains(get_chunk_store()) == []


def test_encryption_is_reported_disabled_without_keys(anonymous_client):
    response = anonymous_client.get("/health")

    assert response.status_code == 200
    assert response.json()["checks"]["encryption"] == "disabled"


def test_encryption_names_the_active_key_never_its_material(anonymous_client, settings):
    lines = [generate_key_line("old"), generate_key_line("key-2025")]
    settings.LUCID_ENCRYPTION_KEYS = ",".join(lines)
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = "key-2025"

    response = anonymous_client.get("/health")

    assert response.status_code == 200
    assert response.json()["checks"]["encryption"] == "key-2025"
    for line in lines:
        assert line.split(":", 1)[1] not in response.content.decode()
