"""Durability on a POSIX filesystem: a rename or a new file is kept only once its directory is."""

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Flush the directory's entries (names created, renamed or removed) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
