"""`ChunkStore.entries`: keys with their sizes and times from one listing, on each backend."""

import time


def test_entries_give_each_key_its_size_and_time_as_size_and_modified_at_do(store):
    before = time.time()
    store.put("s/000000000001.zstd", [b"a" * 10])
    store.put("s/000000000000.zstd", [b"b" * 3])
    store.put("t/000000000000.zstd", [b""])

    entries = list(store.entries("s/"))

    assert [(entry.key, entry.size) for entry in entries] == [
        ("s/000000000000.zstd", 3),
        ("s/000000000001.zstd", 10),
    ]
    for entry in entries:
        assert entry.modified_at == store.modified_at(entry.key)
        assert before - 5 <= entry.modified_at <= time.time() + 5
    assert [entry.key for entry in store.entries()] == list(store.keys())
