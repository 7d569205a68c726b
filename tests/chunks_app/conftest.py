"""Fixtures of the chunk store tests: an empty store of the test's own, on each backend.

`store` is a filesystem store and an S3 store (on the run's one `weed mini`, `s3_service`); a
test of what only the filesystem has asks for it alone with `@pytest.mark.parametrize("store",
["filesystem"], indirect=True)`. `stored` shows what the backend holds, read around the store.
"""

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from chunks_app.storage.base import ChunkStore
from chunks_app.storage.filesystem import FileSystemChunkStore
from chunks_app.storage.s3 import MIN_PART_SIZE, S3ChunkStore
from tests.chunks_app.helpers import files_under

BACKENDS = ["filesystem", "s3"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "chunks"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, root: Path) -> ChunkStore:
    if request.param == "s3":
        service = request.getfixturevalue("s3_service")
        options = service.store_options(prefix=f"test-{uuid.uuid4().hex}")
        return S3ChunkStore(**options, part_size=MIN_PART_SIZE)
    return FileSystemChunkStore(root=root)


@dataclass(frozen=True)
class FilesUnderRoot:
    root: Path

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def names(self) -> list[str]:
        """Every file under the root, temporary ones included."""
        return files_under(self.root)


@dataclass(frozen=True)
class ObjectsUnderPrefix:
    store: S3ChunkStore

    def read(self, key: str) -> bytes:
        answer = self.store.client.get_object(Bucket=self.store.bucket, Key=self._name(key))
        return answer["Body"].read()

    def names(self) -> list[str]:
        """Every object under the prefix, and every unfinished upload as "<key> (unfinished)"."""
        client, bucket, prefix = self.store.client, self.store.bucket, self.store.prefix
        objects = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        return sorted(
            [entry["Key"].removeprefix(prefix) for entry in objects]
            + [f"{upload['Key'].removeprefix(prefix)} (unfinished)" for upload in uploads]
        )

    def _name(self, key: str) -> str:
        return self.store.prefix + key


@pytest.fixture
def stored(store: ChunkStore) -> FilesUnderRoot | ObjectsUnderPrefix:
    if isinstance(store, S3ChunkStore):
        return ObjectsUnderPrefix(store)
    assert isinstance(store, FileSystemChunkStore)
    return FilesUnderRoot(store.root)


@pytest.fixture
def flushed(monkeypatch) -> list[str]:
    """The paths fsynced from now on, in order."""
    paths = []
    fsync = os.fsync

    def recording_fsync(fd):
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return paths
