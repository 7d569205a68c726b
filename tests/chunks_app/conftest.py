"""Fixtures of the chunk store tests: an empty filesystem store of the test's own."""

from pathlib import Path

import pytest

from chunks_app.storage.filesystem import FileSystemChunkStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "chunks"


@pytest.fixture
def store(root: Path) -> FileSystemChunkStore:
    return FileSystemChunkStore(root=root)
