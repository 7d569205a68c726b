"""The spool: received raw bytes, fsynced, waiting under LUCID_STORAGE_PATH until stored.

Uploaded chunks are spooled whole under a name made of the chunk's id. A session's byte stream
is spooled as segment files of exactly `chunk_size` bytes, named by sequence: a segment that
fills up becomes that chunk's spool file as it is, and the last one is cut off at stop.

With encryption on, every spool file is sealed (`chunks_app.sealing`): a stream segment gets
one record per append, under the key it was begun with (in its header), and is named
`.sealed` instead of `.raw`.
"""

import fcntl
import hashlib
import os
import secrets
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from chunks_app.sealing import (
    RAW_SUFFIX,
    SEALED_SUFFIX,
    active_key_id,
    chunk_context,
    chunk_unsealed,
)
from chunks_app.storage import ChunkStoreError
from chunks_app.storage.filesystem import FileSystemChunkStore
from core.durable import fsync_directory
from core.encryption import (
    AuthenticationFailed,
    header,
    key_ring,
    read_header,
    record_boundary,
    seal_records,
)

HASH_PIECE = 1024 * 1024


def get_spool() -> FileSystemChunkStore:
    return FileSystemChunkStore(root=Path(settings.LUCID_STORAGE_PATH) / "spool")


@dataclass(frozen=True)
class Segment:
    """A completed piece of a session's stream, ready to become a chunk."""

    sequence: int
    size: int
    sha256: str
    spool_key: str
    key_id: str | None


class _SegmentWriter:
    """Writes the bytes of one open segment file: as they are, or as sealed records."""

    def __init__(self, fd: int, *, key_id: str | None, context: bytes, position: int) -> None:
        self.fd = fd
        self.key_id = key_id
        self.context = context
        self.position = position

    def pieces(self, part: memoryview) -> Iterable[bytes]:
        if self.key_id is None:
            return (part,)
        return seal_records((part,), key_id=self.key_id, context=self.context, offset=self.position)


class SessionStream:
    """A session's byte stream as segment files; callers hold `locked()` around every change."""

    def __init__(self, *, session_id: uuid.UUID, chunk_size: int) -> None:
        self.session_id = session_id
        self.chunk_size = chunk_size
        self.directory = get_spool().root / str(session_id)

    def spool_key(self, sequence: int, *, sealed: bool | None = None) -> str:
        """The segment's key: sealed or not as asked, else as the file there is."""
        if sealed is None:
            sealed = self._path(sequence, sealed=True).exists()
        return f"{self.session_id}/{self._name(sequence, sealed=sealed)}"

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
        writer: _SegmentWriter | None = None
        hasher = hashlib.sha256() if position == 0 else None
        try:
            for piece in pieces:
                view = memoryview(piece).cast("B")
                while view:
                    if writer is None:
                        writer = self._open_segment(sequence, position)
                    part = view[: self.chunk_size - position]
                    for written in writer.pieces(part):
                        self._write(writer.fd, written)
                    if hasher is not None:
                        hasher.update(part)
                    position += len(part)
                    writer.position = position
                    received += len(part)
                    view = view[len(part) :]
                    if position == self.chunk_size:
                        self._close(writer.fd)
                        key_id, writer = writer.key_id, None
                        digest = hasher.hexdigest() if hasher else self._hash(sequence)
                        key = self.spool_key(sequence, sealed=key_id is not None)
                        completed.append(Segment(sequence, self.chunk_size, digest, key, key_id))
                        sequence, position, hasher = sequence + 1, 0, hashlib.sha256()
        finally:
            if writer is not None:
                self._close(writer.fd)
        with self._os_errors("flush to disk"):
            fsync_directory(self.directory)
        return received, completed

    def seal(self, *, offset: int) -> Segment | None:
        """The partly filled last segment at `offset` as a final segment, if there is one."""
        sequence, position = divmod(offset, self.chunk_size)
        self._discard_after(sequence=sequence, position=position)
        if position == 0:
            return None
        key_id = self.segment_key_id(sequence)
        key = self.spool_key(sequence, sealed=key_id is not None)
        return Segment(sequence, position, self._hash(sequence), key, key_id)

    def read(self, *, sequence: int, size: int) -> bytes:
        """The first `size` plaintext bytes of a segment (fewer if it holds fewer)."""
        key_id = self.segment_key_id(sequence)
        path = self._path(sequence, sealed=key_id is not None)
        with self._os_errors("read"), self._authenticated(), open(path, "rb") as segment:
            return chunk_unsealed(
                segment, session_id=self.session_id, sequence=sequence, key_id=key_id, limit=size
            )

    def reseal(self, *, offset: int, key_id: str) -> bool:
        """Rewrite the partly filled last segment at `offset` under `key_id`; False if there
        is none or it is already under that key. A crash leaves the old or the new file whole."""
        sequence, position = divmod(offset, self.chunk_size)
        if position == 0 or not self._segment_exists(sequence):
            return False
        if self.segment_key_id(sequence) == key_id:
            return False
        content = self.read(sequence=sequence, size=position)
        target = self._path(sequence, sealed=True)
        draft = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        context = chunk_context(session_id=self.session_id, sequence=sequence)
        with self._os_errors("rewrite"):
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                self._write(fd, memoryview(header(key_id)))
                for piece in seal_records((content,), key_id=key_id, context=context):
                    self._write(fd, memoryview(piece))
            finally:
                self._close(fd)
            os.replace(draft, target)
            self._path(sequence, sealed=False).unlink(missing_ok=True)
            fsync_directory(self.directory)
        return True

    @staticmethod
    def _name(sequence: int, *, sealed: bool) -> str:
        return f"stream-{sequence:012d}.{SEALED_SUFFIX if sealed else RAW_SUFFIX}"

    def _path(self, sequence: int, *, sealed: bool) -> Path:
        return self.directory / self._name(sequence, sealed=sealed)

    def _segment_exists(self, sequence: int) -> bool:
        return any(self._path(sequence, sealed=sealed).exists() for sealed in (True, False))

    def segment_key_id(self, sequence: int) -> str | None:
        """The key the segment is sealed under (its header says), None if it is plain."""
        path = self._path(sequence, sealed=True)
        with self._os_errors("read"), self._authenticated():
            try:
                with open(path, "rb") as segment:
                    return read_header(segment)
            except FileNotFoundError:
                return None

    def _open_segment(self, sequence: int, position: int) -> _SegmentWriter:
        """Open the segment to write at plaintext `position`: a new one sealed under the active
        key (plain without one), an existing one as it was begun."""
        context = chunk_context(session_id=self.session_id, sequence=sequence)
        if position == 0:
            key_id = active_key_id()
            with self._os_errors("open"):
                fd = os.open(
                    self._path(sequence, sealed=key_id is not None),
                    os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                    0o600,
                )
            if key_id is not None:
                self._write(fd, memoryview(header(key_id)))
            return _SegmentWriter(fd, key_id=key_id, context=context, position=0)
        key_id = self.segment_key_id(sequence)
        if key_id is not None:
            key_ring().cipher(key_id)
        with self._os_errors("open"):
            fd = os.open(self._path(sequence, sealed=key_id is not None), os.O_WRONLY)
            os.lseek(fd, 0, os.SEEK_END)
        return _SegmentWriter(fd, key_id=key_id, context=context, position=position)

    def _write(self, fd: int, data: memoryview | bytes) -> None:
        with self._os_errors("write"):
            while data:
                data = memoryview(data)[os.write(fd, data) :]

    def _close(self, fd: int) -> None:
        with self._os_errors("flush to disk"):
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _hash(self, sequence: int) -> str:
        return hashlib.sha256(self.read(sequence=sequence, size=self.chunk_size)).hexdigest()

    def _discard_after(self, *, sequence: int, position: int) -> None:
        """Drop stream bytes past (sequence, position): they were never acknowledged."""
        with self._os_errors("trim"), self._authenticated():
            for entry in os.scandir(self.directory):
                name = entry.name
                if name.startswith("stream-") and int(name[7:19]) > sequence:
                    os.unlink(entry.path)
            sealed, plain = self._path(sequence, sealed=True), self._path(sequence, sealed=False)
            if position == 0 or sealed.exists():
                plain.unlink(missing_ok=True)
            if position == 0:
                sealed.unlink(missing_ok=True)
            elif sealed.exists():
                with open(sealed, "rb") as segment:
                    boundary = record_boundary(segment, position=position)
                if sealed.stat().st_size != boundary:
                    os.truncate(sealed, boundary)
            elif plain.exists() and plain.stat().st_size != position:
                os.truncate(plain, position)

    @contextmanager
    def _authenticated(self) -> Iterator[None]:
        try:
            yield
        except AuthenticationFailed as error:
            raise ChunkStoreError(
                f"The stream spool in {self.directory} does not authenticate ({error}): its "
                "acknowledged bytes were changed or are sealed under another key. Run "
                f"`manage.py verify --session {self.session_id}`."
            ) from error

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
