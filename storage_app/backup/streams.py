"""An archive's bytes: hashing, its zstd frame, tar members, unsealing, MiB progress, failing
reads."""

import hashlib
import json
import os
import tarfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import zstandard

from chunks_app.codecs import CodecError
from chunks_app.sealing import chunk_context
from chunks_app.storage import ChunkStore, ChunkStoreError
from core.durable import fsync_directory
from core.encryption import unsealed_pieces
from core.errors import NotFound
from core.progress import Progress, ProgressFactory
from core.sizes import MIB
from storage_app.backup.format import ArchiveDamaged, BackupCorrupt, BackupError

READ_PIECE = 1024 * 1024
COMPRESSED_PIECE = 64 * 1024
ARCHIVE_LEVEL = 3


class HashedReader:
    """A readable stream that hashes and counts every byte read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hasher.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(READ_PIECE):
            pass

    def close(self) -> None:
        """The wrapped stream stays open: its owner closes it."""

    @property
    def sha256(self) -> str:
        return self.hasher.hexdigest()


class PiecesReader:
    """A readable stream of the bytes an iterator yields, in pieces of any size."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._buffer = bytearray()
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            piece = next(self._pieces, None)
            if piece is None:
                self._done = True
            else:
                self._buffer += piece
        size = len(self._buffer) if size < 0 else size
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def drain(self) -> None:
        while self.read(READ_PIECE):
            pass

    def close(self) -> None:
        """The source of the pieces stays open: its owner closes it."""


def _zstd_frame(
    source: BinaryIO, *, on_read: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    """The decompressed bytes of one zstd frame; a corrupt, cut or extended frame is an error."""
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    while True:
        piece = source.read(COMPRESSED_PIECE)
        if on_read:
            on_read(len(piece))
        if not piece:
            if not decompressor.eof:
                raise ArchiveDamaged("it is truncated: its zstd frame does not end")
            return
        if decompressor.eof:
            raise ArchiveDamaged("bytes follow the end of its zstd frame")
        yield decompressor.decompress(piece)
        if decompressor.eof and decompressor.unused_data:
            raise ArchiveDamaged("bytes follow the end of its zstd frame")


def member_unsealed(
    member: BinaryIO, *, session_id: uuid.UUID, sequence: int, key_id: str
) -> PiecesReader:
    """The plaintext of a member sealed for that chunk under `key_id`, each record authenticated
    as it is read (`AuthenticationFailed` otherwise)."""
    context = chunk_context(session_id=session_id, sequence=sequence)
    return PiecesReader(unsealed_pieces(member, context=context, key_id=key_id))


class MibProgress:
    """Advance a progress bar counted in MiB from counts of bytes."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.bytes = 0

    def __call__(self, count: int) -> None:
        if self.progress is None:
            return
        before = -(-self.bytes // MIB)
        self.bytes += count
        if steps := -(-self.bytes // MIB) - before:
            self.progress.advance(steps)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.finish()


def progress_start(progress: ProgressFactory | None, label: str, total: int) -> Progress | None:
    return progress(label, total) if progress else None


def mib_progress(progress: ProgressFactory | None, label: str, path: Path) -> MibProgress:
    total = -(-path.stat().st_size // MIB)
    return MibProgress(progress_start(progress, f"{label} (MiB)", total))


def archive_require(archive: Path) -> None:
    if not archive.is_file():
        raise NotFound(f"There is no backup archive at {archive}; check the path.")


@contextmanager
def archive_reading(archive: Path, *, advice: str) -> Iterator[None]:
    """Turn what a damaged archive makes the readers raise into `BackupCorrupt`."""
    try:
        yield
    except (
        ArchiveDamaged,
        tarfile.TarError,
        zstandard.ZstdError,
        CodecError,
        EOFError,
        UnicodeDecodeError,
        json.JSONDecodeError,
    ) as error:
        raise BackupCorrupt(f"{archive} is damaged: {error}. {advice}") from error
    except OSError as error:
        raise BackupError(
            f"Could not read {archive}: {error.strerror or error}. Check the path and its "
            "permissions."
        ) from error


@contextmanager
def store_errors(*, advice: str) -> Iterator[None]:
    """Turn a failing chunk store or spool into a `BackupError` that says what to do."""
    try:
        yield
    except ChunkStoreError as error:
        raise BackupError(f"{error} {advice}") from error


def archive_members(
    archive: Path, *, on_read: Callable[[int], None] | None = None
) -> Iterator[tuple[str, BinaryIO]]:
    """Each member's name and bytes, in archive order; then the zstd frame is read to its end."""
    with archive.open("rb") as source:
        reader = PiecesReader(_zstd_frame(source, on_read=on_read))
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is None:
                    raise ArchiveDamaged(f"member {member.name!r} is not a regular file")
                yield member.name, extracted
        reader.drain()


@contextmanager
def archive_file(output: Path) -> Iterator[tarfile.TarFile]:
    """A tar stream into `output`.partial, zstd-compressed; renamed to `output` once durable."""
    partial = output.with_name(output.name + ".partial")
    output.parent.mkdir(parents=True, exist_ok=True)
    compressor = zstandard.ZstdCompressor(level=ARCHIVE_LEVEL, write_checksum=True)
    try:
        with (
            partial.open("wb") as file,
            compressor.stream_writer(file, closefd=False) as writer,
            tarfile.open(fileobj=writer, mode="w|", copybufsize=READ_PIECE) as tar,
        ):
            yield tar
        with partial.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(partial, output)
        fsync_directory(output.parent)
    except BaseException:
        with suppress(OSError):
            partial.unlink()
        raise


def member_put(store: ChunkStore, key: str, member: BinaryIO, *, expected: str) -> int:
    """Copy the member into the store under `key`; it must still be what was verified."""
    hashed = HashedReader(member)
    written = store.put(key, iter(lambda: hashed.read(READ_PIECE), b""))
    if hashed.sha256 != expected:
        store.delete(key)
        raise ArchiveDamaged("the archive changed after it was verified; run restore again")
    return written


def member_add(tar: tarfile.TarFile, *, name: str, size: int, stream: BinaryIO, mtime: int) -> str:
    """Add a member read from `stream` and return the sha256 of its bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    hashed = HashedReader(stream)
    tar.addfile(info, hashed)
    return hashed.sha256
