"""The chunk store's used bytes in statistics: walked once, then refreshed in the background."""

import time

import pytest

from chunks_app.selectors import storage_usage, storage_usage_changed
from chunks_app.storage import get_chunk_store

pytestmark = pytest.mark.filesystem_only(
    "the walk of the store's files; an object store's use is what the chunk rows count"
)
SESSION_KEY = "3f2b8c1e-6d4a-4f7b-9a0e-2c5d8e1f4a7b"


def _eventually_used(expected: int, *, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while (used := storage_usage().used_bytes) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return used


def test_the_first_reading_walks_the_store(storage_paths):
    get_chunk_store().put(f"{SESSION_KEY}/000000000000.none", [b"x" * 1000])

    assert storage_usage().used_bytes == 1000


def test_a_fresh_reading_is_served_from_the_cache(storage_paths):
    store = get_chunk_store()
    store.put(f"{SESSION_KEY}/000000000000.none", [b"x" * 1000])
    storage_usage()
    store.put(f"{SESSION_KEY}/000000000001.none", [b"x" * 500])

    time.sleep(0.2)

    assert storage_usage().used_bytes == 1000


def test_a_change_is_measured_in_the_background_while_the_last_reading_is_served(storage_paths):
    store = get_chunk_store()
    store.put(f"{SESSION_KEY}/000000000000.none", [b"x" * 1000])
    storage_usage()
    store.put(f"{SESSION_KEY}/000000000001.none", [b"x" * 500])

    storage_usage_changed()

    assert storage_usage().used_bytes == 1000
    assert _eventually_used(1500) == 1500


def test_an_old_reading_is_measured_again(storage_paths, settings):
    settings.LUCID_STORAGE_USAGE_CACHE_SECONDS = 1
    store = get_chunk_store()
    store.put(f"{SESSION_KEY}/000000000000.none", [b"x" * 1000])
    storage_usage()
    store.put(f"{SESSION_KEY}/000000000001.none", [b"x" * 500])

    time.sleep(1.2)

    assert _eventually_used(1500) == 1500
