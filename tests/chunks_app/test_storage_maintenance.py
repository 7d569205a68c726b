"""The chunk store's upkeep on each backend: ages, leftovers of interrupted writes, removal."""

import os
import time
from pathlib import Path

import pytest

from chunks_app.storage.base import ChunkNotFoundError, InvalidKeyError
from tests.chunks_app.helpers import files_under

# The tests of what only a filesystem store has (files, directories, settable times, links).
filesystem_only = pytest.mark.parametrize("store", ["filesystem"], indirect=True)
SESSION_KEY = "3f2b8c1e-6d4a-4f7b-9a0e-2c5d8e1f4a7b"
KEY = f"{SESSION_KEY}/000000000042.zstd"
HOUR = 3600


class WriteInterrupted(Exception):
    pass


def interrupted_content():
    yield b"first piece "
    raise WriteInterrupted


def leftover(path: Path, *, age: float = 2 * HOUR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half written")
    moment = time.time() - age
    os.utime(path, (moment, moment))
    return path


@filesystem_only
def test_modified_at_is_when_the_key_was_last_written(store, root):
    store.put(KEY, b"chunk")
    os.utime(root / KEY, (1_700_000_000, 1_700_000_000))

    assert store.modified_at(KEY) == 1_700_000_000


def test_modified_at_of_a_fresh_write_is_now(store):
    before = time.time()

    store.put(KEY, b"chunk")

    assert before - 1 <= store.modified_at(KEY) <= time.time() + 1


def test_modified_at_of_a_missing_key_raises_not_found(store):
    store.put(f"{SESSION_KEY}/000000000041.zstd", b"chunk")

    with pytest.raises(ChunkNotFoundError):
        store.modified_at(KEY)
    with pytest.raises(ChunkNotFoundError):
        store.modified_at(SESSION_KEY)


def test_modified_at_rejects_invalid_keys(store):
    with pytest.raises(InvalidKeyError):
        store.modified_at("../outside")


def test_an_interrupted_put_leaves_nothing_behind_to_find(store):
    with pytest.raises(WriteInterrupted):
        store.put(KEY, interrupted_content())

    assert store.leftovers(older_than=time.time() + HOUR) == []


@filesystem_only
def test_leftovers_finds_old_temporary_files_at_every_depth(store, root):
    leftover(root / SESSION_KEY / ".000000000042.zstd.0123456789abcdef.tmp")
    leftover(root / ".health.0123456789abcdef.tmp")

    assert store.leftovers(older_than=time.time() - HOUR) == [
        ".health.0123456789abcdef.tmp",
        f"{SESSION_KEY}/.000000000042.zstd.0123456789abcdef.tmp",
    ]


@filesystem_only
def test_leftovers_skips_files_written_after_the_cutoff(store, root):
    leftover(root / SESSION_KEY / ".recent.tmp", age=60)

    assert store.leftovers(older_than=time.time() - HOUR) == []


@filesystem_only
def test_leftovers_ignores_chunks_locks_and_other_dot_files(store, root):
    store.put(KEY, b"chunk")
    leftover(root / SESSION_KEY / ".stream.lock")
    leftover(root / SESSION_KEY / "stream-000000000000.raw.tmp")
    leftover(root / ".hidden" / ".inside.tmp")
    os.utime(root / KEY, (1_700_000_000, 1_700_000_000))

    assert store.leftovers(older_than=time.time()) == []


def test_leftovers_of_a_store_never_written_to_are_none(store):
    assert store.leftovers(older_than=time.time()) == []


@filesystem_only
def test_remove_leftover_removes_only_that_file(store, root):
    store.put(KEY, b"chunk")
    path = leftover(root / SESSION_KEY / ".000000000042.zstd.0123456789abcdef.tmp")
    (name,) = store.leftovers(older_than=time.time())

    store.remove_leftover(name)

    assert not path.exists()
    assert store.open(KEY).read() == b"chunk"
    assert store.leftovers(older_than=time.time()) == []


@filesystem_only
def test_remove_leftover_of_a_missing_file_is_not_an_error(store):
    store.remove_leftover(f"{SESSION_KEY}/.gone.tmp")


@pytest.mark.parametrize(
    "name",
    [
        KEY,
        f"{SESSION_KEY}/.stream.lock",
        "../outside/.escape.tmp",
        f"{SESSION_KEY}/../../.escape.tmp",
        "/etc/.absolute.tmp",
        ".hidden/.inside.tmp",
        "",
        ".",
    ],
)
def test_remove_leftover_refuses_names_it_does_not_give(store, name):
    store.put(KEY, b"chunk")

    with pytest.raises(InvalidKeyError):
        store.remove_leftover(name)

    assert store.open(KEY).read() == b"chunk"


@filesystem_only
def test_remove_leftover_refuses_to_follow_a_link_out_of_the_root(store, root, tmp_path):
    outside = leftover(tmp_path / "elsewhere" / ".victim.tmp")
    root.mkdir()
    (root / SESSION_KEY).symlink_to(outside.parent, target_is_directory=True)

    with pytest.raises(InvalidKeyError):
        store.remove_leftover(f"{SESSION_KEY}/.victim.tmp")

    assert outside.exists()


OTHER_SESSION_KEY = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"


def session_files(store, count: int) -> None:
    """`count` stored chunks and a leftover of the session, and one chunk of another session."""
    for sequence in range(count):
        store.put(f"{SESSION_KEY}/{sequence:012d}.zstd", b"chunk")
    leftover(store.root / SESSION_KEY / ".000000000099.zstd.0123456789abcdef.tmp")
    store.put(f"{OTHER_SESSION_KEY}/000000000000.zstd", b"other chunk")


@filesystem_only
def test_delete_prefix_passes_over_a_file_that_vanishes_during_the_walk(store, root, monkeypatch):
    session_files(store, 20)
    unlink = os.unlink
    raced = []

    def unlink_after_another_remover(path, *, dir_fd=None):
        if not raced:
            raced.append(path)
            unlink(path, dir_fd=dir_fd)
        unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink_after_another_remover)

    store.delete_prefix(f"{SESSION_KEY}/")

    assert raced
    assert files_under(root) == [f"{OTHER_SESSION_KEY}/000000000000.zstd"]
    assert not (root / SESSION_KEY).exists()


@filesystem_only
def test_delete_prefix_removes_a_file_written_during_the_walk(store, root, monkeypatch):
    session_files(store, 3)
    unlink = os.unlink
    late_key = f"{SESSION_KEY}/000000000003.zstd"

    def unlink_while_a_write_finishes(path, *, dir_fd=None):
        if not store.exists(late_key):
            store.put(late_key, b"late chunk")
        unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink_while_a_write_finishes)

    store.delete_prefix(f"{SESSION_KEY}/")

    assert files_under(root) == [f"{OTHER_SESSION_KEY}/000000000000.zstd"]
    assert not (root / SESSION_KEY).exists()


s3_only = pytest.mark.parametrize("store", ["s3"], indirect=True)


@s3_only
def test_unfinished_uploads_and_stray_probes_are_leftovers_until_removed(store, stored):
    store.put(KEY, b"chunk")
    client, bucket = store.client, store.bucket
    upload = client.create_multipart_upload(Bucket=bucket, Key=f"{store.prefix}{KEY}")
    client.put_object(Bucket=bucket, Key=f"{store.prefix}.health/0123456789abcdef.tmp", Body=b"")

    names = store.leftovers(older_than=time.time() + HOUR)
    assert store.leftovers(older_than=time.time() - HOUR) == []
    for name in names:
        store.remove_leftover(name)
        store.remove_leftover(name)

    assert names == [".health/0123456789abcdef.tmp", f".multipart/{KEY}:{upload['UploadId']}"]
    assert list(store.keys()) == [KEY]
    assert stored.names() == [KEY]
    assert store.leftovers(older_than=time.time() + HOUR) == []
