"""The spool: received raw bytes, kept durably until stored, and the session streams in it.

The spool is a chunk store of its own (`chunks_app.storage.get_spool`): a directory under
LUCID_STORAGE_PATH, or a prefix of the object store. Uploaded chunks are spooled whole under a
name made of the chunk's id. A session's byte stream is kept in one of two ways, picked by the
spool's kind (`session_stream`):

- `FileSessionStream`: segment files of exactly `chunk_size` bytes, named by sequence, appended
  to and cut back under a `flock`; a segment that fills up is that chunk's spool file as it is.
- `ObjectSessionStream`: objects are never changed, so each append of the open segment is a
  part object named by its offset and a token of its own, chained to the part before by that
  part's token; the session row's compare-and-set on `stream_offset` also records the token of
  the last part (`stream_part`), so parts of appends that were never acknowledged are simply not
  in the chain. An append that fills a segment writes it whole as one object. No locks.

With encryption on, every spool file is sealed (`chunks_app.sealing`): a stream segment file
gets one record per append, under the key it was begun with (in its header); a part object is
sealed on its own, bound to its place.
"""

import fcntl
import hashlib
import logging
import os
import re
import secrets
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from chunks_app.sealing import (
    RAW_SUFFIX,
    SEALED_SUFFIX,
    active_key_id,
    chunk_context,
    chunk_seal,
    chunk_unsealed,
)
from chunks_app.storage import ChunkNotFoundError, ChunkStore, ChunkStoreError, get_spool
from chunks_app.storage.filesystem import FileSystemChunkStore
from core.durable import fsync_directory
from core.encryption import (
    AuthenticationFailed,
    header,
    key_ring,
    read_header,
    record_boundary,
    seal_records,
    unsealed_into,
)

__all__ = [
    "FileSessionStream",
    "ObjectSessionStream",
    "RESTORED_PART",
    "Resealed",
    "Segment",
    "SessionStream",
    "get_spool",
    "session_stream",
]

logger = logging.getLogger(__name__)

# The token of the part a restore writes for a stream's open segment.
RESTORED_PART = "restored"


@dataclass(frozen=True)
class Segment:
    """A completed piece of a session's stream, ready to become a chunk; `replaced` names the
    spool files it was put together from, unused once it is recorded."""

    sequence: int
    size: int
    sha256: str
    spool_key: str
    key_id: str | None
    replaced: tuple[str, ...] = ()


@dataclass(frozen=True)
class Appended:
    """What an append wrote: its bytes, the segments it completed, the stream's last part."""

    received: int
    segments: list[Segment]
    part: str


@dataclass(frozen=True)
class Resealed:
    """The open segment rewritten under another key: the part to record, the files it replaced."""

    part: str
    replaced: tuple[str, ...] = ()


def _stream_class(spool: ChunkStore) -> type["SessionStream"]:
    """Segment files in a spool directory, part objects in a bucket."""
    return FileSessionStream if isinstance(spool, FileSystemChunkStore) else ObjectSessionStream


def session_stream(*, session_id: uuid.UUID, chunk_size: int) -> "SessionStream":
    """The session's stream in the spool as configured."""
    spool = get_spool()
    return _stream_class(spool)(session_id=session_id, chunk_size=chunk_size, spool=spool)


def session_stream_lock(*, session_id: uuid.UUID) -> AbstractContextManager[None]:
    """The lock of the session's stream, to take before reading where the stream ends."""
    spool = get_spool()
    return _stream_class(spool).lock(session_id=session_id, spool=spool)


class SessionStream(ABC):
    """A session's byte stream in the spool; `part` names the stream's last part as the session
    row records it, which the callers pass in and store back with the offset."""

    def __init__(self, *, session_id: uuid.UUID, chunk_size: int, spool: ChunkStore) -> None:
        self.session_id = session_id
        self.chunk_size = chunk_size
        self.spool = spool

    @classmethod
    def lock(cls, *, session_id: uuid.UUID, spool: ChunkStore) -> AbstractContextManager[None]:
        """Held around every change: one writer per stream where the layout needs it."""
        return nullcontext()

    def locked(self) -> AbstractContextManager[None]:
        return self.lock(session_id=self.session_id, spool=self.spool)

    @abstractmethod
    def append(self, *, offset: int, part: str, pieces: Iterable[bytes]) -> Appended:
        """Write `pieces` after the first `offset` bytes, durably."""

    @abstractmethod
    def seal(self, *, offset: int, part: str) -> Segment | None:
        """The partly filled last segment at `offset` as a final segment, if there is one."""

    @abstractmethod
    def read(self, *, sequence: int, size: int, part: str) -> bytes:
        """The first `size` plaintext bytes of a segment (fewer if it holds fewer)."""

    @abstractmethod
    def has_segment(self, *, sequence: int, part: str) -> bool: ...

    @abstractmethod
    def segment_key_id(self, *, sequence: int, part: str) -> str | None:
        """The key the open segment's bytes are sealed under, None if they are plain."""

    @abstractmethod
    def reseal(self, *, offset: int, part: str, key_id: str) -> Resealed | None:
        """Rewrite the partly filled last segment at `offset` under `key_id` (None: there is
        none or it is already under that key)."""

    @abstractmethod
    def holds(self, key: str, *, offset: int) -> bool:
        """Whether spool `key` belongs to the open segment at `offset` (cleanup keeps it)."""

    @abstractmethod
    def tail_key(self, *, sequence: int, sealed: bool) -> str:
        """Where a restore puts the acknowledged bytes of the open segment (sealed as a chunk
        is, if `sealed`); the session row then records `RESTORED_PART` as its part."""

    def discard(self, *, keys: Iterable[str]) -> None:
        """Delete spool files a recorded change replaced; one that stays is an orphan for
        `manage.py cleanup`."""
        for key in keys:
            try:
                self.spool.delete(key)
            except ChunkStoreError as error:
                logger.warning("a replaced stream file stays until cleanup: %s", error)

    @contextmanager
    def _authenticated(self) -> Iterator[None]:
        try:
            yield
        except AuthenticationFailed as error:
            raise ChunkStoreError(
                f"The stream spool of session {self.session_id} in {self.spool.location} does "
                f"not authenticate ({error}): its acknowledged bytes were changed or are sealed "
                f"under another key. Run `manage.py verify --session {self.session_id}`."
            ) from error


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


class FileSessionStream(SessionStream):
    """A session's byte stream as segment files in a spool directory, under a `flock`."""

    spool: FileSystemChunkStore

    def __init__(
        self, *, session_id: uuid.UUID, chunk_size: int, spool: FileSystemChunkStore
    ) -> None:
        super().__init__(session_id=session_id, chunk_size=chunk_size, spool=spool)
        self.directory = spool.root / str(session_id)

    def spool_key(self, sequence: int, *, sealed: bool | None = None) -> str:
        """The segment's key: sealed or not as asked, else as the file there is."""
        if sealed is None:
            sealed = self._path(sequence, sealed=True).exists()
        return f"{self.session_id}/{self._name(sequence, sealed=sealed)}"

    @classmethod
    @contextmanager
    def lock(cls, *, session_id: uuid.UUID, spool: FileSystemChunkStore) -> Iterator[None]:
        """One writer per session stream, across processes of this machine."""
        directory = spool.root / str(session_id)
        with _os_errors("lock", directory=directory):
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(directory / ".stream.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def append(self, *, offset: int, part: str, pieces: Iterable[bytes]) -> Appended:
        """Write `pieces` after the first `offset` bytes and fsync them, and the directory
        when a segment file was created.

        Bytes past `offset` left by an unacknowledged earlier call are dropped first.
        """
        sequence, position = divmod(offset, self.chunk_size)
        self._discard_after(sequence=sequence, position=position)
        received = 0
        completed: list[Segment] = []
        writer: _SegmentWriter | None = None
        hasher = hashlib.sha256() if position == 0 else None
        created = False
        try:
            for piece in pieces:
                view = memoryview(piece).cast("B")
                while view:
                    if writer is None:
                        created = created or position == 0
                        writer = self._open_segment(sequence, position)
                    taken = view[: self.chunk_size - position]
                    for written in writer.pieces(taken):
                        self._write(writer.fd, written)
                    if hasher is not None:
                        hasher.update(taken)
                    position += len(taken)
                    writer.position = position
                    received += len(taken)
                    view = view[len(taken) :]
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
        if created:
            with self._os_errors("flush to disk"):
                fsync_directory(self.directory)
        return Appended(received, completed, part)

    def seal(self, *, offset: int, part: str) -> Segment | None:
        sequence, position = divmod(offset, self.chunk_size)
        self._discard_after(sequence=sequence, position=position)
        if position == 0:
            return None
        key_id = self.segment_key_id(sequence=sequence, part=part)
        key = self.spool_key(sequence, sealed=key_id is not None)
        return Segment(sequence, position, self._hash(sequence), key, key_id)

    def read(self, *, sequence: int, size: int, part: str = "") -> bytes:
        key_id = self.segment_key_id(sequence=sequence, part=part)
        path = self._path(sequence, sealed=key_id is not None)
        with self._os_errors("read"), self._authenticated(), open(path, "rb") as segment:
            return chunk_unsealed(
                segment, session_id=self.session_id, sequence=sequence, key_id=key_id, limit=size
            )

    def has_segment(self, *, sequence: int, part: str) -> bool:
        return any(self._path(sequence, sealed=sealed).exists() for sealed in (True, False))

    def segment_key_id(self, *, sequence: int, part: str = "") -> str | None:
        path = self._path(sequence, sealed=True)
        with self._os_errors("read"), self._authenticated():
            try:
                with open(path, "rb") as segment:
                    return read_header(segment)
            except FileNotFoundError:
                return None

    def reseal(self, *, offset: int, part: str, key_id: str) -> Resealed | None:
        """A crash leaves the old or the new file whole."""
        sequence, position = divmod(offset, self.chunk_size)
        if position == 0 or not self.has_segment(sequence=sequence, part=part):
            return None
        if self.segment_key_id(sequence=sequence) == key_id:
            return None
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
        return Resealed(part)

    def holds(self, key: str, *, offset: int) -> bool:
        return key == self.spool_key(offset // self.chunk_size)

    def tail_key(self, *, sequence: int, sealed: bool) -> str:
        return self.spool_key(sequence, sealed=sealed)

    @staticmethod
    def _name(sequence: int, *, sealed: bool) -> str:
        return f"stream-{sequence:012d}.{SEALED_SUFFIX if sealed else RAW_SUFFIX}"

    def _path(self, sequence: int, *, sealed: bool) -> Path:
        return self.directory / self._name(sequence, sealed=sealed)

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
        key_id = self.segment_key_id(sequence=sequence)
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
            self.directory.mkdir(parents=True, exist_ok=True)
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

    def _os_errors(self, action: str) -> AbstractContextManager[None]:
        return _os_errors(action, directory=self.directory)


@contextmanager
def _os_errors(action: str, *, directory: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise ChunkStoreError(
            f"Could not {action} the stream spool in {directory}: "
            f"{error.strerror or error}. Check that LUCID_STORAGE_PATH is writable "
            "and has free space."
        ) from error


_PART_NAME = re.compile(
    r"(?P<start>[0-9]{12})-(?P<part>[A-Za-z0-9]+)-(?P<previous>[A-Za-z0-9]*)\.(?P<suffix>raw|sealed)"
)


@dataclass(frozen=True)
class _Part:
    key: str
    start: int
    previous: str
    sealed: bool


@dataclass
class _Chained:
    """A segment's first bytes read from its chain of parts, and the key of the first part."""

    content: bytearray
    parts: list[_Part]
    key_id: str | None


class ObjectSessionStream(SessionStream):
    """A session's byte stream as immutable objects: part objects of the open segment named
    `<session>/stream-<sequence>/<start>-<part>-<previous part>.raw|sealed`, and each completed
    segment one object `<session>/stream-<sequence>-<part>.raw|sealed`, sealed as a chunk is."""

    def append(self, *, offset: int, part: str, pieces: Iterable[bytes]) -> Appended:
        """Write `pieces` after the first `offset` bytes as new objects (durable once written);
        the caller records the returned part with the new offset, or the objects stay unused."""
        token = secrets.token_hex(8)
        sequence, position = divmod(offset, self.chunk_size)
        start, previous = position, part
        received = 0
        completed: list[Segment] = []
        pending = bytearray()
        for piece in pieces:
            view = memoryview(piece).cast("B")
            while view:
                taken = view[: self.chunk_size - position]
                pending += taken
                position += len(taken)
                received += len(taken)
                view = view[len(taken) :]
                if position == self.chunk_size:
                    before = self._chained(sequence, end=start, part=previous)
                    completed.append(self._segment_put(sequence, before, pending, token=token))
                    sequence, position, start, previous = sequence + 1, 0, 0, ""
                    pending = bytearray()
        if pending:
            self._part_put(sequence, start=start, content=pending, token=token, previous=previous)
        return Appended(received, completed, token if pending or completed else part)

    def seal(self, *, offset: int, part: str) -> Segment | None:
        sequence, position = divmod(offset, self.chunk_size)
        if position == 0:
            return None
        chained = self._chained(sequence, end=position, part=part)
        return self._segment_put(sequence, chained, b"", token=secrets.token_hex(8))

    def read(self, *, sequence: int, size: int, part: str) -> bytes:
        return bytes(self._chained(sequence, end=size, part=part).content)

    def has_segment(self, *, sequence: int, part: str) -> bool:
        return bool(part) and part in self._parts(sequence)

    def segment_key_id(self, *, sequence: int, part: str) -> str | None:
        """The key of the stream's last part."""
        last = self._parts(sequence).get(part)
        return None if last is None else self._key_id_of(last)

    def reseal(self, *, offset: int, part: str, key_id: str) -> Resealed | None:
        """One new part with the whole open segment under `key_id` (the caller records it)."""
        sequence, position = divmod(offset, self.chunk_size)
        parts = self._chain(sequence, end=position, part=part) if position else []
        if not parts:
            return None
        keys = {self._key_id_of(found) for found in parts}
        if keys == {key_id}:
            return None
        content = self._chained(sequence, end=position, part=part).content
        token = secrets.token_hex(8)
        self._part_put(sequence, start=0, content=content, token=token, previous="", key_id=key_id)
        return Resealed(token, tuple(found.key for found in parts))

    def holds(self, key: str, *, offset: int) -> bool:
        return key.startswith(self._part_prefix(offset // self.chunk_size))

    def tail_key(self, *, sequence: int, sealed: bool) -> str:
        suffix = SEALED_SUFFIX if sealed else RAW_SUFFIX
        return f"{self._part_prefix(sequence)}{0:012d}-{RESTORED_PART}-.{suffix}"

    def _part_prefix(self, sequence: int) -> str:
        return f"{self.session_id}/stream-{sequence:012d}/"

    def _parts(self, sequence: int) -> dict[str, _Part]:
        """The segment's part objects by token, committed or not (one listing)."""
        prefix = self._part_prefix(sequence)
        found: dict[str, _Part] = {}
        for key in self.spool.keys(prefix):
            if match := _PART_NAME.fullmatch(key.removeprefix(prefix)):
                found[match["part"]] = _Part(
                    key, int(match["start"]), match["previous"], match["suffix"] == SEALED_SUFFIX
                )
        return found

    def _chain(self, sequence: int, *, end: int, part: str) -> list[_Part]:
        """The parts holding the segment's first `end` bytes, first to last, from `part` back."""
        if end == 0:
            return []
        parts = self._parts(sequence)
        chain: list[_Part] = []
        token = part
        while True:
            found = parts.get(token)
            if found is None or (chain and found.start >= chain[-1].start):
                raise ChunkStoreError(
                    f"The stream of session {self.session_id} is missing part {token or '?'} "
                    f"of segment {sequence} in {self.spool.location}; its acknowledged bytes are "
                    f"gone. Run `manage.py verify --session {self.session_id}`."
                )
            chain.append(found)
            if found.start == 0:
                return chain[::-1]
            token = found.previous

    def _chained(self, sequence: int, *, end: int, part: str) -> _Chained:
        chained = _Chained(bytearray(), self._chain(sequence, end=end, part=part), None)
        ends = [found.start for found in chained.parts[1:]] + [end]
        for index, (found, part_end) in enumerate(zip(chained.parts, ends, strict=False)):
            key_id = self._part_into(chained.content, sequence, found, size=part_end - found.start)
            if index == 0:
                chained.key_id = key_id
        if len(chained.content) != end:
            raise ChunkStoreError(
                f"The stream of session {self.session_id} holds {len(chained.content)} bytes of "
                f"segment {sequence}, not the {end} acknowledged. Run `manage.py verify "
                f"--session {self.session_id}`."
            )
        return chained

    def _part_into(
        self, content: bytearray, sequence: int, found: _Part, *, size: int
    ) -> str | None:
        """Add the first `size` bytes of a part to `content`; return the key it is sealed under."""
        try:
            with self.spool.open(found.key) as stored, self._authenticated():
                if not found.sealed:
                    content += stored.read(size)
                    return None
                key_id = read_header(stored)
                stored.seek(0)
                context = self._part_context(sequence, start=found.start)
                content += unsealed_into(stored, context=context, key_id=key_id, limit=size)
                return key_id
        except ChunkNotFoundError as error:
            raise ChunkStoreError(
                f"A part of the stream of session {self.session_id} vanished ({error}). Run "
                f"`manage.py verify --session {self.session_id}`."
            ) from error

    def _key_id_of(self, found: _Part) -> str | None:
        if not found.sealed:
            return None
        with self.spool.open(found.key) as sealed, self._authenticated():
            return read_header(sealed)

    def _part_context(self, sequence: int, *, start: int) -> bytes:
        """A part at the segment's start is sealed as a chunk is; later ones also by place."""
        context = chunk_context(session_id=self.session_id, sequence=sequence)
        return context if start == 0 else context + start.to_bytes(8, "big")

    def _part_put(
        self,
        sequence: int,
        *,
        start: int,
        content: bytes | bytearray,
        token: str,
        previous: str,
        key_id: str | None = None,
    ) -> None:
        key_id = key_id or active_key_id()
        suffix = SEALED_SUFFIX if key_id else RAW_SUFFIX
        key = f"{self._part_prefix(sequence)}{start:012d}-{token}-{previous}.{suffix}"
        pieces: Iterable[bytes] = (content,)
        if key_id:
            context = self._part_context(sequence, start=start)
            pieces = (header(key_id), *seal_records(pieces, key_id=key_id, context=context))
        self.spool.put(key, pieces, if_absent=True)

    def _segment_put(
        self, sequence: int, before: _Chained, rest: bytes | bytearray, *, token: str
    ) -> Segment:
        """The segment as one object, under the key its first part was sealed under (as a
        segment file keeps the key it was begun with), or the active key if it had no parts."""
        key_id = before.key_id if before.parts else active_key_id()
        suffix = SEALED_SUFFIX if key_id else RAW_SUFFIX
        key = f"{self.session_id}/stream-{sequence:012d}-{token}.{suffix}"
        content = before.content + rest
        sealed = chunk_seal([content], session_id=self.session_id, sequence=sequence, key_id=key_id)
        self.spool.put(key, sealed, if_absent=True)
        digest = hashlib.sha256(content).hexdigest()
        replaced = tuple(found.key for found in before.parts)
        return Segment(sequence, len(content), digest, key, key_id, replaced)
