"""Small real filesystems for tests of a full disk: a tmpfs of a given size, mounted as root."""

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_filesystem(path: Path, *, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "16m") mounted at `path` (made here), unmounted afterwards.

    Skips the test, saying why, where mounting is not permitted (not root, no mount command).
    """
    path.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("needs the mount command to make a small filesystem")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
