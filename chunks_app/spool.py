"""The spool: received raw bytes, fsynced, waiting under LUCID_STORAGE_PATH until stored.

Uploaded chunks are spooled whole under a name made of the chunk's id. A session's byte stream
is spooled as segment files of exactly `chunk_size` bytes, named by sequence: a segment that
fills up becomes that chunk's spool file as it is, and the last one is sealed at stop.
"""

import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from chunks_app.storage import ChunkStoreError
from chunks_app.storage.filesystem import FileSystemChunkStore
from core.durable import fsync_directory

HASH_PIECE = 1024 * 1024


def get_spool() -> FileSystemChunkStore:
    return FileSystemChunkStore(root=Path(settings.LUCID_STORAGE_PATH) / "spool")


def upload_spool_key(*, session_id: uuid.UUID, chunk_id: uuid.UUID) -> str:
    return f"{session_id}/{chunk_id}.raw"


@dataclass(frozen=True)
class Segment:
    """A completed piece of a session's stream, ready to become a chunk."""

    sequence: int
    size: int
    sha256: str
    spool_key: str


class SessionStream:
    """A session's byte stream as segment files; callers hold `locked()` around every change."""

    def __init__(self, *, session_id: uuid.UUID, chunk_size: int) -> None:
        self.session_id = session_id
        self.chunk_size = chunk_size
        self.directory = get_spool().root / str(session_id)

    def spool_key(self, sequence: int) -> str:
        return f"{self.session_id}/stream-{sequence:012d}.raw"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer per session stream, across processes of this machine."""
        with self._os_errors("lock"):
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / ".stream.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def append(self, *, offset: int, pieces: Iterable[bytes]) -> tuple[int, list[Segment]]:
        """Write `pieces` after the first `offset` bytes and fsync them.

        Bytes past `offset` left by an unacknowledged earlier call are dropped first. Returns
        the number of bytes written and the segments they completed.
        """
        sequence, position = divmod(offset, self.chunk_size)
        self._discard_after(sequence=sequence, position=position)
        received = 0
        completed: list[Segment] = []
        fd: int | None = None
        hasher = hashlib.sha256() if position == 0 else None
        try:
            for piece in pieces:
                view = memoryview(piece).cast("B")
                while view:
                    if fd is None:
                        fd = self._open_segment(sequence, position)
                    part = view[: self.chunk_size - position]
                    self._write(fd, part)
                    if hasher is not None:
                        hasher.update(part)
                    position += len(part)
                    received += len(part)
                    view = view[len(part) :]
                    if position == self.chunk_size:
                        self._close(fd)
                        fd = None
                        digest = hasher.hexdigest() if hasher else self._hash(sequence)
                        completed.append(
                            Segment(sequence, self.chunk_size, digest, self.spool_key(sequence))
                        )
                        sequence, position, hasher = sequence + 1, 0, hashlib.sha256()
        finally:
            if fd is not None:
                self._close(fd)
        with self._os_errors("flush to disk"):
            fsync_directory(self.directory)
        return received, completed

    def seal(self, *, offset: int) -> Segment | None:
        """The partly filled last segment at `offset` as a final segment, if there is one."""
        sequence, position = divmod(offset, self.chunk_size)
        self._discard_after(sequence=sequence, position=position)
        if position == 0:
            return None
        return Segment(sequence, position, self._hash(sequence), self.spool_key(sequence))

    def _path(self, sequence: int) -> Path:
        return self.directory / f"stream-{sequence:012d}.raw"

    def _open_segment(self, sequence: int, position: int) -> int:
        with self._os_errors("open"):
            fd = os.open(self._path(sequence), os.O_WRONLY | os.O_CREAT, 0o644)
            os.lseek(fd, position, os.SEEK_SET)
        return fd

    def _write(self, fd: int, data: memoryview) -> None:
        with self._os_errors("write"):
            while data:
                data = data[os.write(fd, data) :]

    def _close(self, fd: int) -> None:
        with self._os_errors("flush to disk"):
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _hash(self, sequence: int) -> str:
        hasher = hashlib.sha256()
        with self._os_errors("read"), open(self._path(sequence), "rb") as segment:
            while piece := segment.read(HASH_PIECE):
                hasher.update(piece)
        return hasher.hexdigest()

    def _discard_after(self, *, sequence: int, position: int) -> None:
        """Drop stream bytes past (sequence, position): they were never acknowledged."""
        with self._os_errors("trim"):
            for entry in os.scandir(self.directory):
                name = entry.name
                if name.startswith("stream-") and int(name[7:19]) > sequence:
                    os.unlink(entry.path)
            current = self._path(sequence)
            if current.exists() and current.stat().st_size != position:
                os.truncate(current, position)

    @contextmanager
    def _os_errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise ChunkStoreError(
                f"Could not {action} the stream spool in {self.directory}: "
                f"{error.strerror or error}. Check that LUCID_STORAGE_PATH is writable "
                "and has free space."
            ) from error
