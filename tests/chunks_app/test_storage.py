"""The filesystem chunk store: stored bytes, atomic writes, key checks, listing and usage."""

import errno
import os
import tempfile
import time
from pathlib import Path

import pytest

from chunks_app.storage.base import (
    ChunkNotFoundError,
    ChunkStoreError,
    InvalidKeyError,
    StoreUsage,
)
from chunks_app.storage.filesystem import FileSystemChunkStore
from tests.chunks_app.helpers import files_under

SESSION_KEY = "3f2b8c1e-6d4a-4f7b-9a0e-2c5d8e1f4a7b"
KEY = f"{SESSION_KEY}/000000000042.zst"


class WriteInterrupted(Exception):
    pass


def interrupted_content():
    yield b"first piece "
    yield b"second piece "
    raise WriteInterrupted


def test_put_writes_the_content_to_a_file_under_the_root(store, root):
    store.put(KEY, [b"hello ", b"chunk"])

    assert (root / KEY).read_bytes() == b"hello chunk"


def test_put_returns_the_number_of_bytes_written(store):
    assert store.put(KEY, [b"hello ", b"", b"chunk"]) == 11


def test_put_accepts_a_single_bytes_object(store, root):
    store.put(KEY, b"whole chunk")

    assert (root / KEY).read_bytes() == b"whole chunk"


def test_put_stores_large_content_unchanged(store, root):
    content = os.urandom(3 * 1024 * 1024)

    store.put(KEY, [content[:1000], content[1000:]])

    assert (root / KEY).read_bytes() == content


def test_put_replaces_existing_content(store, root):
    store.put(KEY, [b"old"])

    store.put(KEY, [b"new"])

    assert (root / KEY).read_bytes() == b"new"


def test_open_returns_the_stored_bytes(store):
    store.put(KEY, [b"hello ", b"chunk"])

    with store.open(KEY) as stored:
        assert stored.read() == b"hello chunk"


def test_open_of_a_missing_key_raises_not_found(store):
    with pytest.raises(ChunkNotFoundError):
        store.open(KEY)


def test_exists_is_false_before_put_and_true_after(store):
    assert not store.exists(KEY)

    store.put(KEY, [b"chunk"])

    assert store.exists(KEY)


def test_exists_is_false_for_a_directory(store):
    store.put(KEY, [b"chunk"])

    assert not store.exists(SESSION_KEY)


def test_size_is_the_number_of_stored_bytes(store):
    store.put(KEY, [b"12345", b"678"])

    assert store.size(KEY) == 8


def test_size_of_a_missing_key_raises_not_found(store):
    with pytest.raises(ChunkNotFoundError):
        store.size(KEY)


def test_delete_removes_the_stored_file(store, root):
    store.put(KEY, [b"chunk"])

    store.delete(KEY)

    assert not store.exists(KEY)
    assert not (root / KEY).exists()


def test_delete_of_a_missing_key_does_nothing(store):
    store.delete(KEY)

    assert not store.exists(KEY)


def test_interrupted_put_leaves_no_file_under_the_final_name_and_no_temporary_file(store, root):
    with pytest.raises(WriteInterrupted):
        store.put(KEY, interrupted_content())

    assert not (root / KEY).exists()
    assert files_under(root) == []


def test_interrupted_put_keeps_the_previous_content(store, root):
    store.put(KEY, [b"previous"])

    with pytest.raises(WriteInterrupted):
        store.put(KEY, interrupted_content())

    assert files_under(root) == [KEY]
    assert (root / KEY).read_bytes() == b"previous"


def test_failing_rename_raises_a_store_error_with_advice_and_removes_the_temporary_file(
    store, root, monkeypatch
):
    def full_disk(source, destination):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full_disk)

    with pytest.raises(ChunkStoreError, match="free space"):
        store.put(KEY, [b"chunk"])

    assert files_under(root) == []


def test_os_error_from_the_content_is_not_mistaken_for_a_store_error(store, root):
    def unreadable_upload():
        yield b"start"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put(KEY, unreadable_upload())

    assert files_under(root) == []


def test_put_where_a_file_blocks_the_directory_raises_a_store_error(store, root):
    store.put("session", [b"not a directory"])

    with pytest.raises(ChunkStoreError):
        store.put("session/000000000001.zst", [b"chunk"])


INVALID_KEYS = [
    "../x",
    "/abs",
    "a//b",
    "a/../b",
    "a/./b",
    "a b",
    "",
    "a/",
    "..",
    ".hidden",
    "a\\b",
    "a\x00b",
    "é",
    "x" * 201,
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_put_rejects_an_invalid_key(store, root, key):
    with pytest.raises(InvalidKeyError):
        store.put(key, [b"chunk"])

    assert not root.exists()


@pytest.mark.parametrize(
    "operation",
    [
        lambda store: store.open("../x"),
        lambda store: store.exists("../x"),
        lambda store: store.size("../x"),
        lambda store: store.delete("../x"),
        lambda store: list(store.keys("../")),
    ],
    ids=["open", "exists", "size", "delete", "keys"],
)
def test_every_operation_rejects_an_invalid_key(store, operation):
    with pytest.raises(InvalidKeyError):
        operation(store)


def test_invalid_key_error_is_a_store_error():
    assert issubclass(InvalidKeyError, ChunkStoreError)


def test_keys_lists_every_stored_key(store):
    stored = ["a/000000000001.zst", "a/000000000002.zst", "b/000000000001.lz4", "top"]
    for key in stored:
        store.put(key, [b"chunk"])

    assert sorted(store.keys()) == stored


def test_keys_lists_only_keys_under_the_prefix(store):
    for key in ["ab/1", "ab/2", "abc/1", "b/1"]:
        store.put(key, [b"chunk"])

    assert sorted(store.keys("ab/")) == ["ab/1", "ab/2"]
    assert sorted(store.keys("ab")) == ["ab/1", "ab/2", "abc/1"]
    assert sorted(store.keys("ab/2")) == ["ab/2"]


def test_keys_skips_temporary_files(store, root):
    store.put(KEY, [b"chunk"])
    temporary = (root / KEY).with_name(".000000000043.zst.0123456789abcdef.tmp")
    temporary.write_bytes(b"half a chunk")

    assert list(store.keys()) == [KEY]


def test_keys_of_an_empty_store_is_empty(store):
    assert list(store.keys()) == []


def test_usage_reports_the_stored_bytes_and_free_space(store, root):
    store.put("a/1", [b"x" * 1000])
    store.put("b/2", [b"y" * 234])

    usage = store.usage()

    assert usage == StoreUsage(path=str(root), used_bytes=1234, free_bytes=usage.free_bytes)
    assert usage.free_bytes > 0


def test_usage_of_a_store_not_written_to_yet_is_zero_bytes(store):
    usage = store.usage()

    assert usage.used_bytes == 0
    assert usage.free_bytes > 0


def test_put_flushes_the_file_and_every_changed_directory_to_disk(store, root, monkeypatch):
    flushed = []
    fsync = os.fsync

    def recording_fsync(fd):
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)

    store.put(KEY, [b"chunk"])

    session_directory = root / SESSION_KEY
    assert Path(flushed[0]).parent == session_directory
    assert Path(flushed[0]).name.startswith(".000000000042.zst.")
    assert flushed[1:] == [str(session_directory), str(root), str(root.parent)]


def test_put_from_links_the_source_file_on_the_same_filesystem(store, root, tmp_path):
    spool = FileSystemChunkStore(root=tmp_path / "spool")
    spool.put("spooled/chunk.raw", [b"raw bytes"])
    an_hour_ago = time.time() - 3600
    os.utime(spool.root / "spooled/chunk.raw", (an_hour_ago, an_hour_ago))

    assert store.put_from(KEY, source=spool, source_key="spooled/chunk.raw") == 9

    assert os.stat(root / KEY).st_ino == os.stat(spool.root / "spooled/chunk.raw").st_ino
    assert store.modified_at(KEY) > an_hour_ago + 3000
    spool.delete("spooled/chunk.raw")
    assert (root / KEY).read_bytes() == b"raw bytes"
    assert files_under(root) == [KEY]


def test_put_from_copies_across_filesystems(store, root):
    shared_memory = Path("/dev/shm")
    if not shared_memory.is_dir() or os.stat(shared_memory).st_dev == os.stat(root.parent).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's directory")
    with tempfile.TemporaryDirectory(dir=shared_memory) as directory:
        spool = FileSystemChunkStore(root=directory)
        spool.put("spooled/chunk.raw", [b"x" * 3_000_000])

        assert store.put_from(KEY, source=spool, source_key="spooled/chunk.raw") == 3_000_000

        assert os.stat(root / KEY).st_dev != os.stat(spool.root / "spooled/chunk.raw").st_dev
    assert (root / KEY).read_bytes() == b"x" * 3_000_000
    assert files_under(root) == [KEY]


def test_put_from_a_missing_source_raises_not_found_and_leaves_nothing(store, root, tmp_path):
    spool = FileSystemChunkStore(root=tmp_path / "spool")

    with pytest.raises(ChunkNotFoundError):
        store.put_from(KEY, source=spool, source_key="spooled/gone.raw")

    assert files_under(root) == []
