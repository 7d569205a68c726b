"""The fault-injection seam of the integrity tests (tests/support/faults.py), on each backend."""

import time

import pytest
from django.utils import timezone

from chunks_app.storage import ChunkStoreError, get_chunk_store, get_spool
from chunks_app.storage.base import ChunkStoreFull
from chunks_app.storage.s3 import S3ChunkStore
from tests.support.faults import (
    DAMAGES,
    FaultyFileSystemChunkStore,
    FaultyS3ChunkStore,
    damage,
    leftover_make,
    leftover_names,
    overwrite,
    put_after,
    read_around,
    remains,
    swap,
)

KEY = "3f2b8c1e-6d4a-4f7b-9a0e-2c5d8e1f4a7b/000000000001.zstd"
OTHER_KEY = "3f2b8c1e-6d4a-4f7b-9a0e-2c5d8e1f4a7b/000000000002.zstd"
CONTENT = bytes(range(256)) * 4


def kept(store, key: str) -> bytes:
    with store.open(key) as stored:
        return stored.read()


@pytest.mark.parametrize("how", list(DAMAGES))
def test_damage_changes_what_the_store_then_reads(store, how):
    store.put(KEY, [CONTENT])

    damage(store, KEY, how)

    if how == "deleted":
        assert not store.exists(KEY)
    elif how == "truncated":
        assert kept(store, KEY) == CONTENT[: len(CONTENT) // 2]
    else:
        changed = [
            i for i, (a, b) in enumerate(zip(kept(store, KEY), CONTENT, strict=True)) if a != b
        ]
        assert changed == [len(CONTENT) // 2]


def test_overwrite_and_swap_replace_the_bytes_under_a_key(store):
    store.put(KEY, [CONTENT])
    store.put(OTHER_KEY, [b"other"])

    swap(store, KEY, OTHER_KEY)
    assert (kept(store, KEY), kept(store, OTHER_KEY)) == (b"other", CONTENT)
    overwrite(store, KEY, b"garbage")

    assert read_around(store, KEY) == kept(store, KEY) == b"garbage"


def test_a_leftover_made_is_one_the_store_finds_and_removes(store):
    store.put(KEY, [CONTENT])

    name = leftover_make(store, OTHER_KEY)

    assert leftover_names(store) == [name]
    assert store.leftovers(older_than=time.time() - 3600) == []
    assert list(store.keys()) == [KEY]
    store.remove_leftover(name)
    assert leftover_names(store) == []


def test_remains_shows_keys_and_leftovers_under_a_prefix(store):
    store.put(KEY, [CONTENT])
    store.put("elsewhere/000000000000.zstd", [CONTENT])
    name = leftover_make(store, OTHER_KEY)

    found = remains(store, KEY.partition("/")[0] + "/")

    unfinished = f"{OTHER_KEY} (unfinished)" if isinstance(store, S3ChunkStore) else name
    assert found == sorted([KEY, unfinished])


def test_put_after_writes_a_key_the_store_dates_later(store):
    store.put(KEY, [CONTENT])

    between = put_after(store, OTHER_KEY, CONTENT, than=KEY)

    assert store.modified_at(KEY) < between < store.modified_at(OTHER_KEY)


def test_the_clock_moves_django_s_now(clock):
    before = timezone.now()
    clock.advance(7200)

    assert 7199 < (timezone.now() - before).total_seconds() < 7260


def test_a_faulty_chunk_store_is_the_configured_one_failing_as_told(chunk_store_faults):
    store = get_chunk_store()
    assert isinstance(store, FaultyFileSystemChunkStore | FaultyS3ChunkStore)
    store.put(KEY, [CONTENT])
    chunk_store_faults.fail("open", ChunkStoreError("unreachable"), under=KEY, times=1)
    chunk_store_faults.fail("put", ChunkStoreFull("no space left"), under="full/")

    with pytest.raises(ChunkStoreError, match="unreachable"):
        store.open(KEY)
    with pytest.raises(ChunkStoreFull):
        store.put("full/000000000000.none", [CONTENT])

    assert kept(store, KEY) == CONTENT
    assert ("open", KEY) in chunk_store_faults.calls


def test_a_faulty_store_keeps_its_faults_when_settings_change(chunk_store_faults, settings):
    chunk_store_faults.fail("exists", ChunkStoreError("unreachable"))

    settings.LUCID_STORAGE_QUOTA_BYTES = settings.LUCID_STORAGE_QUOTA_BYTES + 1
    settings.LUCID_CHUNK_STORE_OPTIONS = dict(settings.LUCID_CHUNK_STORE_OPTIONS)

    with pytest.raises(ChunkStoreError, match="unreachable"):
        get_chunk_store().exists(KEY)


def test_a_stalled_spool_takes_that_much_longer(spool_faults):
    spool_faults.stall("put", 0.3)
    started = time.monotonic()

    get_spool().put(KEY, [CONTENT])

    assert time.monotonic() - started >= 0.3
