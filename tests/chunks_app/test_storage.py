"""The chunk store on each backend: stored bytes, atomic writes, key checks, listing and usage."""

import errno
import io
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from chunks_app.storage.base import (
    ChunkExistsError,
    ChunkNotFoundError,
    ChunkStoreError,
    ChunkStoreFull,
    InvalidKeyError,
    StoreUsage,
)
from chunks_app.storage.filesystem import FileSystemChunkStore
from chunks_app.storage.s3 import MIB, MIN_PART_SIZE, UNLIMITED_BYTES, S3ChunkStore
from tests.chunks_app.helpers import files_under

# The tests of what only a filesystem store has (files, directories, fsync, hard links).
filesystem_only = pytest.mark.parametrize("store", ["filesystem"], indirect=True)
SESSION_KEY = "3f2b8c1e-6d4a-4f7b-9a0e-2c5d8e1f4a7b"
KEY = f"{SESSION_KEY}/000000000042.zst"


class WriteInterrupted(Exception):
    pass


def interrupted_content():
    yield b"first piece "
    yield b"second piece "
    raise WriteInterrupted


def test_put_stores_the_content_under_the_key(store, stored):
    store.put(KEY, [b"hello ", b"chunk"])

    assert stored.names() == [KEY]
    assert stored.read(KEY) == b"hello chunk"


def test_put_returns_the_number_of_bytes_written(store):
    assert store.put(KEY, [b"hello ", b"", b"chunk"]) == 11


def test_put_accepts_a_single_bytes_object(store, stored):
    store.put(KEY, b"whole chunk")

    assert stored.read(KEY) == b"whole chunk"


def test_put_stores_large_content_unchanged(store, stored):
    content = os.urandom(3 * 1024 * 1024)

    store.put(KEY, [content[:1000], content[1000:]])

    assert stored.read(KEY) == content


def test_put_replaces_existing_content(store, stored):
    store.put(KEY, [b"old"])

    store.put(KEY, [b"new"])

    assert stored.read(KEY) == b"new"


def test_put_if_absent_stores_under_a_free_key(store, stored):
    assert store.put(KEY, [b"first"], if_absent=True) == 5

    assert stored.read(KEY) == b"first"


def test_put_if_absent_keeps_what_the_key_holds_and_says_so(store, stored):
    store.put(KEY, [b"acknowledged"])

    with pytest.raises(ChunkExistsError, match="already exists"):
        store.put(KEY, [b"replayed"], if_absent=True)

    assert stored.names() == [KEY]
    assert stored.read(KEY) == b"acknowledged"


def test_racing_puts_if_absent_store_exactly_one_of_them(store, stored):
    contents = [bytes([n]) * 1000 for n in range(8)]

    def put(content):
        try:
            store.put(KEY, [content], if_absent=True)
        except ChunkExistsError:
            return None
        return content

    with ThreadPoolExecutor(max_workers=len(contents)) as pool:
        won = [content for content in pool.map(put, contents) if content is not None]

    assert len(won) == 1
    assert stored.names() == [KEY]
    assert stored.read(KEY) == won[0]


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


def test_exists_is_false_for_a_prefix_of_keys(store):
    store.put(KEY, [b"chunk"])

    assert not store.exists(SESSION_KEY)


def test_size_is_the_number_of_stored_bytes(store):
    store.put(KEY, [b"12345", b"678"])

    assert store.size(KEY) == 8


def test_size_of_a_missing_key_raises_not_found(store):
    with pytest.raises(ChunkNotFoundError):
        store.size(KEY)


def test_delete_removes_what_was_stored(store, stored):
    store.put(KEY, [b"chunk"])

    store.delete(KEY)

    assert not store.exists(KEY)
    assert stored.names() == []


def test_delete_of_a_missing_key_does_nothing(store):
    store.delete(KEY)

    assert not store.exists(KEY)


def test_interrupted_put_leaves_nothing_under_the_key_and_nothing_unfinished(store, stored):
    with pytest.raises(WriteInterrupted):
        store.put(KEY, interrupted_content())

    assert not store.exists(KEY)
    assert stored.names() == []


def test_interrupted_put_keeps_the_previous_content(store, stored):
    store.put(KEY, [b"previous"])

    with pytest.raises(WriteInterrupted):
        store.put(KEY, interrupted_content())

    assert stored.names() == [KEY]
    assert stored.read(KEY) == b"previous"


@filesystem_only
def test_failing_rename_raises_a_store_error_with_advice_and_removes_the_temporary_file(
    store, root, monkeypatch
):
    def full_disk(source, destination):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full_disk)

    with pytest.raises(ChunkStoreError, match="free space"):
        store.put(KEY, [b"chunk"])

    assert files_under(root) == []


def test_os_error_from_the_content_is_not_mistaken_for_a_store_error(store, stored):
    def unreadable_upload():
        yield b"start"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put(KEY, unreadable_upload())

    assert stored.names() == []


@filesystem_only
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
def test_put_rejects_an_invalid_key(store, stored, key):
    with pytest.raises(InvalidKeyError):
        store.put(key, [b"chunk"])

    assert stored.names() == []


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


@filesystem_only
def test_keys_skips_temporary_files(store, root):
    store.put(KEY, [b"chunk"])
    temporary = (root / KEY).with_name(".000000000043.zst.0123456789abcdef.tmp")
    temporary.write_bytes(b"half a chunk")

    assert list(store.keys()) == [KEY]


def test_keys_of_an_empty_store_is_empty(store):
    assert list(store.keys()) == []


def test_usage_reports_the_stored_bytes_and_free_space(store):
    store.put("a/1", [b"x" * 1000])
    store.put("b/2", [b"y" * 234])

    usage = store.usage()

    assert usage == StoreUsage(path=store.location, used_bytes=1234, free_bytes=usage.free_bytes)
    assert usage.free_bytes > 0


def test_usage_of_a_store_not_written_to_yet_is_zero_bytes(store):
    usage = store.usage()

    assert usage.used_bytes == 0
    assert usage.free_bytes > 0


@filesystem_only
def test_put_flushes_the_file_and_every_changed_directory_to_disk(store, root, flushed):
    store.put(KEY, [b"chunk"])

    session_directory = root / SESSION_KEY
    assert Path(flushed[0]).parent == session_directory
    assert Path(flushed[0]).name.startswith(".000000000042.zst.")
    assert flushed[1:] == [str(session_directory), str(root), str(root.parent)]


@filesystem_only
def test_put_if_absent_on_a_filesystem_without_hard_links_still_keeps_what_is_there(
    store, stored, monkeypatch
):
    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store.put(KEY, [b"first"], if_absent=True)

    with pytest.raises(ChunkExistsError):
        store.put(KEY, [b"second"], if_absent=True)

    assert stored.names() == [KEY]
    assert stored.read(KEY) == b"first"


@filesystem_only
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


@filesystem_only
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


def test_put_from_a_missing_source_raises_not_found_and_leaves_nothing(store, stored, tmp_path):
    spool = FileSystemChunkStore(root=tmp_path / "spool")

    with pytest.raises(ChunkNotFoundError):
        store.put_from(KEY, source=spool, source_key="spooled/gone.raw")

    assert stored.names() == []


def test_open_gives_a_file_that_seeks(store):
    content = bytes(range(256)) * 4
    store.put(KEY, [content])

    with store.open(KEY) as stored:
        stored.seek(1000)
        assert stored.read() == content[1000:]
        assert stored.tell() == 1024
        stored.seek(10)
        assert stored.read(5) == content[10:15]
        assert stored.seek(-4, io.SEEK_END) == 1020
        assert stored.read() == content[1020:]


def test_delete_prefix_removes_the_keys_under_it_and_counts_them(store, stored):
    for sequence in range(3):
        store.put(f"{SESSION_KEY}/{sequence:012d}.zst", [b"chunk"])
    store.put(f"{SESSION_KEY}0/000000000000.zst", [b"other session"])

    assert store.delete_prefix(f"{SESSION_KEY}/") == 3

    assert stored.names() == [f"{SESSION_KEY}0/000000000000.zst"]


def test_check_writable_leaves_nothing_behind(store, stored):
    store.check_writable()

    assert stored.names() == []


# The S3 store's own: uploads in parts, readers of a replaced object, copies within the service,
# S3's errors and the quota that stands in for free space.
s3_only = pytest.mark.parametrize("store", ["s3"], indirect=True)


@s3_only
def test_content_larger_than_a_part_goes_up_in_parts_unchanged(store, stored):
    content = os.urandom(2 * MIN_PART_SIZE + 123)

    written = store.put(KEY, [content[i : i + MIB] for i in range(0, len(content), MIB)])

    assert written == len(content)
    assert stored.names() == [KEY]
    assert stored.read(KEY) == content
    head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + KEY)
    assert head["ETag"].endswith('-3"')


@s3_only
def test_an_interrupted_upload_in_parts_keeps_the_previous_content_and_is_aborted(store, stored):
    store.put(KEY, [b"previous"])

    def interrupted_large_content():
        yield b"x" * (MIN_PART_SIZE + 1)
        raise WriteInterrupted

    with pytest.raises(WriteInterrupted):
        store.put(KEY, interrupted_large_content())

    assert stored.names() == [KEY]
    assert stored.read(KEY) == b"previous"


@s3_only
def test_an_upload_in_parts_if_absent_keeps_what_the_key_holds_and_is_aborted(store, stored):
    store.put(KEY, [b"acknowledged"])

    with pytest.raises(ChunkExistsError):
        store.put(KEY, [os.urandom(MIN_PART_SIZE + 1)], if_absent=True)

    assert stored.names() == [KEY]
    assert stored.read(KEY) == b"acknowledged"


@s3_only
def test_a_reader_of_a_replaced_object_fails_instead_of_mixing_the_two(store):
    store.put(KEY, [b"a" * 100])
    reader = store.open(KEY)
    store.put(KEY, [b"b" * 100])

    reader.seek(50)
    with pytest.raises(ChunkStoreError, match="PreconditionFailed"):
        reader.read()


@s3_only
def test_put_from_another_s3_store_copies_within_the_service(store, stored, s3_service):
    staging = S3ChunkStore(**s3_service.store_options(prefix=f"staging-{uuid.uuid4().hex}"))
    staging.put("spooled/chunk.raw", [b"raw bytes"])

    def no_reading_through_this_process(key):
        raise AssertionError("the bytes went through this process")

    staging.open = no_reading_through_this_process

    assert store.put_from(KEY, source=staging, source_key="spooled/chunk.raw") == 9
    assert stored.read(KEY) == b"raw bytes"
    with pytest.raises(ChunkNotFoundError, match="spooled/gone.raw"):
        store.put_from(KEY, source=staging, source_key="spooled/gone.raw")


@s3_only
def test_a_full_service_raises_store_full(store):
    with Stubber(store.client) as stubber:
        stubber.add_client_error(
            "put_object", service_error_code="QuotaExceeded", http_status_code=403
        )

        with pytest.raises(ChunkStoreFull, match="quota"):
            store.put(KEY, [b"chunk"])


@s3_only
def test_refused_credentials_raise_a_store_error_naming_them(store, s3_service):
    options = s3_service.store_options(prefix=store.prefix)
    intruder = S3ChunkStore(**{**options, "secret_access_key": "wrong"})

    with pytest.raises(ChunkStoreError, match="AWS_SECRET_ACCESS_KEY"):
        intruder.put(KEY, [b"chunk"])


@s3_only
def test_an_unreachable_service_raises_a_store_error_naming_the_endpoint(store, monkeypatch):
    def unreachable(**kwargs):
        raise EndpointConnectionError(endpoint_url=store.endpoint_url)

    monkeypatch.setattr(store.client, "head_object", unreachable)

    with pytest.raises(ChunkStoreError, match="is reachable"):
        store.exists(KEY)


@s3_only
def test_free_space_is_the_quota_less_the_stored_bytes(store, s3_service):
    quota = S3ChunkStore(**s3_service.store_options(prefix=store.prefix), quota_bytes=10_000)
    store.put(KEY, [b"x" * 1234])

    assert quota.free_bytes() == 10_000 - 1234
    assert store.free_bytes() == UNLIMITED_BYTES
