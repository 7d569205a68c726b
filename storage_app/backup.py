"""Backups of sessions into one archive file, and restores that verify it whole before writing.

Archive format, version 1: a tar stream (POSIX pax) inside one zstd frame with a checksum,
named `*.tar.zst`. It is written to `<name>.partial`, fsynced and renamed, so a file with the
final name is always complete. Its members, in this order:

- `sessions/<session id>.json`, one per session, followed by that session's chunk and stream
  members: the session's fields (the owner by username, `merkle_root`, timestamps, the recording
  format, `processing_us`, `stream_offset` …); the other running totals follow from its chunks.
- `chunks/<session id>/<sequence:012d>.<algorithm>`: a chunk's bytes as the chunk store holds
  them; a chunk not stored yet is taken raw from the spool, with algorithm `none`.
- `streams/<session id>/tail.raw`: bytes of a streamed session that were acknowledged but do
  not fill a chunk yet.
- `manifest.json`, always last: `format` ("lucid-backup"), `version` (1), `id` (uuid4),
  `created_at`, `base` (the id of the archive an incremental one builds on, else null),
  `sessions` (`id`, `member`, `sha256` of the member, `stream_tail`: `member`, `size`,
  `sha256` or null) and `chunks`, one entry per chunk of every session: `session`, `sequence`,
  `id`, `size` and `sha256` of the raw bytes, `algorithm`, `stored_size`, `stored_sha256` (of
  the member's bytes), `created_at`, `stored_at`, `processing_ms`, and either `member` or
  `"in_base": <base id>`.

An incremental archive leaves out the bytes of every chunk its base already holds (same
session, sequence and stored_sha256); restoring it needs those chunks in the database already,
that is: the base restored first.

A restore reads the archive twice. The first pass writes nothing: it checks every member's
sha256, decompresses each chunk (one at a time, streamed) against its raw sha256, each sealed
Merkle root, and compares each session with the database. The second pass puts each session's
chunk files into the store, then writes its rows in one transaction.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import zstandard
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chunks_app.codecs import CodecError, get_codec
from chunks_app.merkle import merkle_root
from chunks_app.models import Chunk
from chunks_app.spool import SessionStream, get_spool
from chunks_app.storage import ChunkNotFoundError, ChunkStore, ChunkStoreError, get_chunk_store
from core.audit import audit_record
from core.choices import AuditAction, ChunkStatus, CompressionAlgorithm
from core.db import atomic
from core.durable import fsync_directory
from core.errors import ApplicationError, NotFound, ValidationFailed
from core.progress import Progress
from sessions_app import tallies
from sessions_app.choices import IngestMode, SessionStatus
from sessions_app.models import Session
from sessions_app.tallies import tally_apply

FORMAT = "lucid-backup"
VERSION = 1
MANIFEST = "manifest.json"
ARCHIVE_PREFIX = "lucid-backup-"
ARCHIVE_SUFFIX = ".tar.zst"
READ_PIECE = 1024 * 1024
COMPRESSED_PIECE = 64 * 1024
RECORD_MAX_BYTES = 1024 * 1024
MIB = 1024 * 1024
ARCHIVE_LEVEL = 3
PROBLEMS_SHOWN = 5
RESTORE_ADVICE = "Nothing was restored; restore another backup archive."
BACKUP_STORE_ADVICE = "No archive was written; fix this, then run the backup again."
RESTORE_PARTLY_ADVICE = (
    "Sessions restored before this one are complete and are skipped when the restore runs "
    "again; fix this, then run it again."
)

CREATE, EXTEND, UNCHANGED = "create", "extend", "unchanged"
DATETIME_FIELDS = ("created_at", "updated_at", "started_at", "stopped_at", "last_data_at")
RECORD_FIELDS = (
    "name",
    "host",
    "metadata",
    "status",
    "chunk_size",
    "compression_algorithm",
    "compression_level",
    "retention_days",
    "legal_hold",
    "processing_us",
    "ingest_mode",
    "stream_offset",
    "merkle_root",
    *DATETIME_FIELDS,
)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ALGORITHMS = "|".join(CompressionAlgorithm.values)
SESSION_MEMBER = re.compile(rf"sessions/(?P<session>{_UUID})\.json")
CHUNK_MEMBER = re.compile(
    rf"chunks/(?P<session>{_UUID})/(?P<sequence>[0-9]{{12}})\.(?P<algorithm>{_ALGORITHMS})"
)
TAIL_MEMBER = re.compile(rf"streams/(?P<session>{_UUID})/tail\.raw")
ARCHIVE_NAME = re.compile(r"lucid-backup-.+\.tar\.zst")

ProgressFactory = Callable[[str, int], Progress]


class BackupError(ApplicationError):
    """A backup or restore that could not be done; the message says what to do next."""

    default_code = "backup_failed"


class BackupCorrupt(BackupError):
    """The archive is not what its manifest says: damaged, truncated or not a Lucid backup."""

    default_code = "backup_corrupt"


class _Damaged(Exception):
    """What is wrong inside an archive; `_reading` says which archive and what to do."""


class RestoreNeedsBase(BackupError):
    """An incremental archive whose base's chunks are not in the database yet."""

    status_code = 409
    default_code = "restore_needs_base"


class RestoreConflict(BackupError):
    """Sessions of the archive exist in the database with other data."""

    status_code = 409
    default_code = "restore_conflict"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    archive_id: str
    base_id: str | None
    session_count: int
    chunk_count: int
    chunks_in_base: int
    size: int


@dataclass(frozen=True)
class ArchivedChunk:
    session_id: uuid.UUID
    sequence: int
    id: uuid.UUID
    size: int
    sha256: str
    algorithm: str
    stored_size: int
    stored_sha256: str
    member: str | None
    in_base: str | None
    created_at: datetime | None
    stored_at: datetime | None
    processing_ms: float | None

    @property
    def storage_key(self) -> str:
        return f"{self.session_id}/{self.sequence:012d}.{self.algorithm}"


@dataclass(frozen=True)
class StreamTail:
    member: str
    size: int
    sha256: str


@dataclass
class ArchivedSession:
    id: uuid.UUID
    member: str
    sha256: str
    stream_tail: StreamTail | None
    record: dict[str, Any] = field(default_factory=dict)
    chunks: list[ArchivedChunk] = field(default_factory=list)
    action: str = CREATE
    chunks_to_write: set[int] = field(default_factory=set)
    write_tail: bool = False

    @property
    def owner(self) -> str:
        return self.record["owner"]


@dataclass
class VerifiedArchive:
    path: Path
    archive_id: str
    base_id: str | None
    created_at: str
    sessions: list[ArchivedSession]
    owners_missing: list[str]

    def sessions_to(self, action: str) -> list[ArchivedSession]:
        return [session for session in self.sessions if session.action == action]


@dataclass
class RestoreResult:
    archive_id: str
    dry_run: bool
    sessions_created: int = 0
    sessions_extended: int = 0
    sessions_unchanged: int = 0
    chunks_written: int = 0
    bytes_written: int = 0
    users_created: list[str] = field(default_factory=list)


@dataclass
class _MemberDigest:
    sha256: str
    size: int
    raw_sha256: str | None = None
    raw_size: int | None = None


class _Hashed:
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


class _ZstdFrameReader:
    """The decompressed bytes of one zstd frame; a corrupt, cut or extended frame is an error."""

    def __init__(self, source: BinaryIO, *, on_read: Callable[[int], None] | None = None) -> None:
        self._source = source
        self._decompressor = zstandard.ZstdDecompressor().decompressobj()
        self._buffer = bytearray()
        self._done = False
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._fill()
        size = len(self._buffer) if size < 0 else size
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def drain(self) -> None:
        """Read to the end of the frame, which checks its checksum."""
        while self.read(READ_PIECE):
            pass

    def _fill(self) -> None:
        piece = self._source.read(COMPRESSED_PIECE)
        if self._on_read:
            self._on_read(len(piece))
        if not piece:
            if not self._decompressor.eof:
                raise _Damaged("it is truncated: its zstd frame does not end")
            self._done = True
            return
        if self._decompressor.eof:
            raise _Damaged("bytes follow the end of its zstd frame")
        self._buffer += self._decompressor.decompress(piece)
        if self._decompressor.eof and self._decompressor.unused_data:
            raise _Damaged("bytes follow the end of its zstd frame")


class _MibProgress:
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


def _progress_start(progress: ProgressFactory | None, label: str, total: int) -> Progress | None:
    return progress(label, total) if progress else None


def _mib_progress(progress: ProgressFactory | None, label: str, path: Path) -> _MibProgress:
    total = -(-path.stat().st_size // MIB)
    return _MibProgress(_progress_start(progress, f"{label} (MiB)", total))


@contextmanager
def _reading(archive: Path, *, advice: str) -> Iterator[None]:
    """Turn what a damaged archive makes the readers raise into `BackupCorrupt`."""
    try:
        yield
    except (
        _Damaged,
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


def _archive_members(
    archive: Path, *, on_read: Callable[[int], None] | None = None
) -> Iterator[tuple[str, BinaryIO]]:
    """Each member's name and bytes, in archive order; then the zstd frame is read to its end."""
    with archive.open("rb") as source:
        reader = _ZstdFrameReader(source, on_read=on_read)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is None:
                    raise _Damaged(f"member {member.name!r} is not a regular file")
                yield member.name, extracted
        reader.drain()


def _archive_require(archive: Path) -> None:
    if not archive.is_file():
        raise NotFound(f"There is no backup archive at {archive}; check the path.")


def _datetime_text(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _datetime_value(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = parse_datetime(text)
    if value is None:
        raise ValueError(f"not a date and time: {text!r}")
    return value


def _session_record(session: Session) -> dict[str, Any]:
    record: dict[str, Any] = {"id": str(session.pk), "owner": session.owner.get_username()}
    for name in RECORD_FIELDS:
        value = getattr(session, name)
        record[name] = _datetime_text(value) if name in DATETIME_FIELDS else value
    return record


def _session_fields(record: dict[str, Any]) -> dict[str, Any]:
    fields = {name: record[name] for name in RECORD_FIELDS}
    for name in DATETIME_FIELDS:
        fields[name] = _datetime_value(fields[name])
    return fields


# --- backup ------------------------------------------------------------------------------------


def _held_chunks(archive: Path, *, progress: ProgressFactory | None) -> tuple[str, dict]:
    """The id of a previous archive and the stored_sha256 of each chunk it holds, by place."""
    _archive_require(archive)
    mib_progress = _mib_progress(progress, "read base", archive)
    manifest = None
    try:
        with _reading(archive, advice="Make a full backup instead (leave out --incremental)."):
            for name, member in _archive_members(archive, on_read=mib_progress):
                if name == MANIFEST:
                    manifest = json.loads(member.read())
            try:
                held = {
                    (entry["session"], entry["sequence"]): entry["stored_sha256"]
                    for entry in manifest["chunks"]
                }
                return str(manifest["id"]), held
            except (KeyError, TypeError) as error:
                raise _Damaged(f"its manifest is missing or not valid ({error})") from error
    finally:
        mib_progress.finish()


def _selected_sessions(
    *, session_ids: list[uuid.UUID] | None, since: datetime | None
) -> list[Session]:
    sessions = Session.objects.select_related("owner").order_by("created_at", "id")
    if session_ids:
        sessions = sessions.filter(pk__in=session_ids)
        missing = set(session_ids) - {session.pk for session in sessions}
        if missing:
            raise NotFound(
                f"No session with id {', '.join(map(str, sorted(missing)))}; "
                "list them with GET /api/v1/sessions."
            )
    if since is not None:
        sessions = sessions.filter(created_at__gte=since)
    return list(sessions)


def _session_refresh(session: Session) -> None:
    try:
        session.refresh_from_db()
    except Session.DoesNotExist:
        raise BackupError(
            f"Session {session.pk} was deleted during the backup; run the backup again."
        ) from None


def _session_snapshot(session: Session) -> tuple[list[Chunk], bytes | None]:
    """The session's current fields, its chunks and the stream bytes past them, consistently.

    A stream still recording is locked meanwhile, so no chunk can be cut from it in between.
    """
    _session_refresh(session)
    live_stream = session.ingest_mode == IngestMode.STREAM and session.status in (
        SessionStatus.RECORDING,
        SessionStatus.PAUSED,
    )
    if not live_stream:
        chunks = list(Chunk.objects.filter(session=session).order_by("sequence"))
        return chunks, None
    stream = SessionStream(session_id=session.pk, chunk_size=session.chunk_size)
    with stream.locked():
        _session_refresh(session)
        chunks = list(Chunk.objects.filter(session=session).order_by("sequence"))
        sequence, size = divmod(session.stream_offset, session.chunk_size)
        if not size or any(chunk.sequence == sequence for chunk in chunks):
            return chunks, None
        try:
            with get_spool().open(stream.spool_key(sequence)) as segment:
                tail = segment.read(size)
        except ChunkNotFoundError:
            tail = b""
        if len(tail) != size:
            raise BackupError(
                f"The acknowledged stream bytes of session {session.pk} past its last chunk are "
                f"missing from the spool; run `manage.py verify --session {session.pk}`, or "
                "leave the session out with --sessions."
            )
    return chunks, tail


def _chunk_source(chunk: Chunk) -> tuple[BinaryIO, str, int, str]:
    """The chunk's bytes as stored with their algorithm, size and expected sha256.

    A chunk not stored yet comes raw from the spool; if the pipeline stores it meanwhile and
    removes the spool file, from the store.
    """
    if chunk.status != ChunkStatus.STORED:
        try:
            return (
                get_spool().open(chunk.spool_key),
                CompressionAlgorithm.NONE,
                chunk.size,
                chunk.sha256,
            )
        except ChunkNotFoundError:
            chunk.refresh_from_db()
    if chunk.status != ChunkStatus.STORED:
        raise BackupError(
            f"Chunk {chunk.sequence} of session {chunk.session_id} ({chunk.status}) has no "
            f"bytes in the spool or the chunk store; run `manage.py verify --session "
            f"{chunk.session_id}` and leave the session out with --sessions."
        )
    try:
        stream = get_chunk_store().open(chunk.storage_key)
    except ChunkNotFoundError:
        raise BackupError(
            f"Chunk {chunk.sequence} of session {chunk.session_id} is missing from the chunk "
            f"store; run `manage.py verify --session {chunk.session_id}` and leave the session "
            "out with --sessions."
        ) from None
    return stream, chunk.algorithm, chunk.compressed_size, chunk.stored_sha256


def _member_add(tar: tarfile.TarFile, *, name: str, size: int, stream: BinaryIO, mtime: int) -> str:
    """Add a member read from `stream` and return the sha256 of its bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    hashed = _Hashed(stream)
    tar.addfile(info, hashed)
    return hashed.sha256


def _chunk_entry(chunk: Chunk, *, algorithm: str, stored_size: int, stored_sha256: str) -> dict:
    return {
        "session": str(chunk.session_id),
        "sequence": chunk.sequence,
        "id": str(chunk.pk),
        "size": chunk.size,
        "sha256": chunk.sha256,
        "algorithm": algorithm,
        "stored_size": stored_size,
        "stored_sha256": stored_sha256,
        "created_at": _datetime_text(chunk.created_at),
        "stored_at": _datetime_text(chunk.stored_at),
        "processing_ms": chunk.processing_ms,
    }


@dataclass
class _ArchiveWriter:
    """What one backup adds to its tar stream, and the manifest it collects meanwhile."""

    tar: tarfile.TarFile
    mtime: int
    base_id: str | None
    held: dict
    sessions: list[dict] = field(default_factory=list)
    chunks: list[dict] = field(default_factory=list)

    def add_session(self, session: Session, *, tail: bytes | None) -> None:
        name = f"sessions/{session.pk}.json"
        record = json.dumps(_session_record(session), sort_keys=True).encode()
        digest = self._add(name, io.BytesIO(record), len(record))
        stream_tail = None
        if tail is not None:
            member = f"streams/{session.pk}/tail.raw"
            sha256 = self._add(member, io.BytesIO(tail), len(tail))
            stream_tail = {"member": member, "size": len(tail), "sha256": sha256}
        self.sessions.append(
            {"id": str(session.pk), "member": name, "sha256": digest, "stream_tail": stream_tail}
        )

    def add_chunk(self, chunk: Chunk) -> None:
        """Add the chunk's entry, and its bytes unless the base holds them."""
        source, algorithm, stored_size, expected = _chunk_source(chunk)
        with closing(source):
            entry = _chunk_entry(
                chunk, algorithm=algorithm, stored_size=stored_size, stored_sha256=expected
            )
            if self.held.get((entry["session"], entry["sequence"])) == expected:
                self.chunks.append({**entry, "in_base": self.base_id})
                return
            name = f"chunks/{chunk.session_id}/{chunk.sequence:012d}.{algorithm}"
            try:
                digest = self._add(name, source, stored_size)
            except OSError as error:
                raise BackupError(
                    f"Could not copy chunk {chunk.sequence} of session {chunk.session_id} "
                    f"into the archive: {error}. Check free space where the archive goes, then "
                    f"run `manage.py verify --session {chunk.session_id}`."
                ) from error
        if digest != expected:
            raise BackupError(
                f"Chunk {chunk.sequence} of session {chunk.session_id} does not match its "
                f"sha256; run `manage.py verify --session {chunk.session_id}` and leave the "
                "session out with --sessions until it is repaired."
            )
        self.chunks.append({**entry, "member": name})

    def add_manifest(self, *, archive_id: str, created_at: datetime) -> None:
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "id": archive_id,
            "created_at": created_at.isoformat(),
            "base": self.base_id,
            "sessions": self.sessions,
            "chunks": self.chunks,
        }
        data = json.dumps(manifest, sort_keys=True).encode()
        self._add(MANIFEST, io.BytesIO(data), len(data))

    def _add(self, name: str, stream: BinaryIO, size: int) -> str:
        return _member_add(self.tar, name=name, size=size, stream=stream, mtime=self.mtime)


@contextmanager
def _store_errors(*, advice: str) -> Iterator[None]:
    """Turn a failing chunk store or spool into a `BackupError` that says what to do."""
    try:
        yield
    except ChunkStoreError as error:
        raise BackupError(f"{error} {advice}") from error


@contextmanager
def _archive_file(output: Path) -> Iterator[tarfile.TarFile]:
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


def backup_create(
    *,
    output: Path,
    session_ids: list[uuid.UUID] | None,
    since: datetime | None,
    incremental_from: Path | None,
    progress: ProgressFactory | None = None,
) -> BackupResult:
    """Write the selected sessions (all by default) into a new archive at `output`."""
    output = Path(output)
    if output.exists():
        raise BackupError(f"{output} already exists; choose another name or move it away first.")
    base_id, held = None, {}
    if incremental_from is not None:
        base_id, held = _held_chunks(Path(incremental_from), progress=progress)
    sessions = _selected_sessions(session_ids=session_ids, since=since)
    bar = _progress_start(progress, "backup", sum(session.chunk_count for session in sessions))
    created_at = timezone.now()
    archive_id = str(uuid.uuid4())
    try:
        with _archive_file(output) as tar, _store_errors(advice=BACKUP_STORE_ADVICE):
            archive = _ArchiveWriter(
                tar=tar, mtime=int(created_at.timestamp()), base_id=base_id, held=held
            )
            for session in sessions:
                chunks, tail = _session_snapshot(session)
                archive.add_session(session, tail=tail)
                for chunk in chunks:
                    archive.add_chunk(chunk)
                    if bar:
                        bar.advance()
            archive.add_manifest(archive_id=archive_id, created_at=created_at)
    finally:
        if bar:
            bar.finish()
    result = BackupResult(
        path=output,
        archive_id=archive_id,
        base_id=base_id,
        session_count=len(sessions),
        chunk_count=len(archive.chunks),
        chunks_in_base=sum(1 for entry in archive.chunks if "in_base" in entry),
        size=output.stat().st_size,
    )
    audit_record(
        action=AuditAction.BACKUP_CREATED,
        detail={
            "archive_id": archive_id,
            "path": str(output),
            "base_id": base_id,
            "sessions": result.session_count,
            "chunks": result.chunk_count,
            "chunks_in_base": result.chunks_in_base,
            "size": result.size,
        },
    )
    return result


def backup_rotate(*, directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` lucid-backup-*.tar.zst files (by modification time).

    Returns the paths removed.
    """
    if keep < 1:
        raise ValidationFailed(
            "keep must be at least 1: rotation never deletes the last backup.",
            fields={"keep": ["Must be at least 1."]},
        )
    directory = Path(directory)
    if not directory.is_dir():
        return []
    archives = sorted(
        (
            path
            for path in directory.iterdir()
            if ARCHIVE_NAME.fullmatch(path.name) and path.is_file()
        ),
        key=lambda path: (path.stat().st_mtime, path.name),
    )
    removed = archives[:-keep]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def backup_run(*, directory: Path, keep: int) -> BackupResult:
    """A full backup of every session into `directory`, named by the UTC time; then rotation."""
    stamp = timezone.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = Path(directory) / f"{ARCHIVE_PREFIX}{stamp}{ARCHIVE_SUFFIX}"
    result = backup_create(output=output, session_ids=None, since=None, incremental_from=None)
    backup_rotate(directory=directory, keep=keep)
    return result


# --- verify ------------------------------------------------------------------------------------


def _chunk_digest(stream: BinaryIO, *, algorithm: str) -> _MemberDigest:
    """Hash the member's bytes and, decompressing them as they pass, its raw bytes."""
    stored = _Hashed(stream)
    raw_hasher, raw_size = hashlib.sha256(), 0
    with closing(get_codec(algorithm).open_decompressed(stored)) as raw:
        while piece := raw.read(READ_PIECE):
            raw_hasher.update(piece)
            raw_size += len(piece)
    stored.drain()
    return _MemberDigest(stored.sha256, stored.size, raw_hasher.hexdigest(), raw_size)


@dataclass
class _ArchiveScan:
    manifest: dict | None = None
    digests: dict[str, _MemberDigest] = field(default_factory=dict)
    records: dict[str, dict] = field(default_factory=dict)


def _archive_scan(archive: Path, *, progress: ProgressFactory | None) -> _ArchiveScan:
    """Read every member once: hashes, decompressed chunks, session records, the manifest."""
    scan = _ArchiveScan()
    current_session = None
    mib_progress = _mib_progress(progress, "verify", archive)
    try:
        for name, member in _archive_members(archive, on_read=mib_progress):
            if scan.manifest is not None:
                raise _Damaged(f"member {name!r} follows the manifest, which must be last")
            if name in scan.digests:
                raise _Damaged(f"member {name!r} appears twice")
            if name == MANIFEST:
                data = member.read()
                scan.manifest = json.loads(data)
                scan.digests[name] = _MemberDigest(hashlib.sha256(data).hexdigest(), len(data))
            elif match := SESSION_MEMBER.fullmatch(name):
                data = member.read(RECORD_MAX_BYTES + 1)
                if len(data) > RECORD_MAX_BYTES:
                    raise _Damaged(f"member {name!r} is too large for a session record")
                current_session = match["session"]
                scan.records[name] = json.loads(data)
                scan.digests[name] = _MemberDigest(hashlib.sha256(data).hexdigest(), len(data))
            elif match := CHUNK_MEMBER.fullmatch(name) or TAIL_MEMBER.fullmatch(name):
                if match["session"] != current_session:
                    raise _Damaged(f"member {name!r} is not next to its session's record")
                algorithm = match.groupdict().get("algorithm") or CompressionAlgorithm.NONE
                scan.digests[name] = _chunk_digest(member, algorithm=algorithm)
            else:
                raise _Damaged(f"member {name!r} is not part of a Lucid backup")
    finally:
        mib_progress.finish()
    if scan.manifest is None:
        raise _Damaged("the manifest is missing: this is not a complete Lucid backup")
    return scan


def _chunk_from_entry(entry: dict) -> ArchivedChunk:
    member, in_base = entry.get("member"), entry.get("in_base")
    if (member is None) == (in_base is None):
        raise ValueError("a chunk entry needs either member or in_base")
    return ArchivedChunk(
        session_id=uuid.UUID(entry["session"]),
        sequence=int(entry["sequence"]),
        id=uuid.UUID(entry["id"]),
        size=int(entry["size"]),
        sha256=str(entry["sha256"]),
        algorithm=str(entry["algorithm"]),
        stored_size=int(entry["stored_size"]),
        stored_sha256=str(entry["stored_sha256"]),
        member=member,
        in_base=in_base,
        created_at=_datetime_value(entry.get("created_at")),
        stored_at=_datetime_value(entry.get("stored_at")),
        processing_ms=entry.get("processing_ms"),
    )


def _sessions_from_manifest(manifest: dict) -> list[ArchivedSession]:
    sessions: dict[uuid.UUID, ArchivedSession] = {}
    for entry in manifest["sessions"]:
        tail = entry.get("stream_tail")
        session = ArchivedSession(
            id=uuid.UUID(entry["id"]),
            member=str(entry["member"]),
            sha256=str(entry["sha256"]),
            stream_tail=StreamTail(tail["member"], int(tail["size"]), tail["sha256"])
            if tail
            else None,
        )
        if session.id in sessions:
            raise ValueError(f"session {session.id} is listed twice")
        sessions[session.id] = session
    for entry in manifest["chunks"]:
        chunk = _chunk_from_entry(entry)
        if chunk.session_id not in sessions:
            raise ValueError(f"a chunk of session {chunk.session_id}, which is not listed")
        sessions[chunk.session_id].chunks.append(chunk)
    for session in sessions.values():
        session.chunks.sort(key=lambda chunk: chunk.sequence)
        sequences = [chunk.sequence for chunk in session.chunks]
        if len(set(sequences)) != len(sequences):
            raise ValueError(f"session {session.id} lists a chunk twice")
    return list(sessions.values())


def _record_check(record: dict[str, Any], *, session_id: uuid.UUID) -> None:
    """Raise ValueError unless the record describes that session completely."""
    if record.get("id") != str(session_id):
        raise ValueError(f"it names session {record.get('id')}")
    _session_fields(record)
    if not isinstance(record.get("owner"), str) or not record["owner"]:
        raise ValueError("it names no owner")
    for name in ("chunk_size", "stream_offset", "processing_us"):
        if not isinstance(record[name], int) or isinstance(record[name], bool):
            raise ValueError(f"{name} is not an integer")
    if not isinstance(record["merkle_root"], str):
        raise ValueError("merkle_root is not text")
    for name, choices in (
        ("status", SessionStatus.values),
        ("compression_algorithm", CompressionAlgorithm.values),
        ("ingest_mode", IngestMode.values),
    ):
        if record[name] not in choices:
            raise ValueError(f"{name} {record[name]!r} is not one of {', '.join(choices)}")


def _session_problems(session: ArchivedSession, scan: _ArchiveScan, base_id: str | None):
    """What in the archive contradicts the manifest about this session."""
    digest = scan.digests.get(session.member)
    if digest is None or session.member not in scan.records:
        yield f"the record of session {session.id} ({session.member}) is missing"
        return
    if digest.sha256 != session.sha256:
        yield f"the record of session {session.id} does not match its sha256"
        return
    record = scan.records[session.member]
    try:
        _record_check(record, session_id=session.id)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        yield f"the record of session {session.id} is not valid: {error}"
        return
    for chunk in session.chunks:
        where = f"chunk {chunk.sequence} of session {chunk.session_id}"
        if chunk.in_base is not None:
            if chunk.in_base != base_id:
                yield f"{where} is said to be in archive {chunk.in_base}, which is not the base"
            continue
        digest = scan.digests.get(chunk.member)
        if chunk.member != f"chunks/{chunk.storage_key}" or digest is None:
            yield f"{where} is missing ({chunk.member})"
        elif (digest.sha256, digest.size) != (chunk.stored_sha256, chunk.stored_size):
            yield f"{where} does not match its stored sha256 and size"
        elif (digest.raw_sha256, digest.raw_size) != (chunk.sha256, chunk.size):
            yield f"{where} does not decompress to its sha256 and size"
    tail = session.stream_tail
    if tail is not None:
        digest = scan.digests.get(tail.member)
        if tail.member != f"streams/{session.id}/tail.raw" or digest is None:
            yield f"the stream tail of session {session.id} is missing"
        elif (digest.sha256, digest.size) != (tail.sha256, tail.size):
            yield f"the stream tail of session {session.id} does not match its sha256"
    sealed = record["merkle_root"]
    if sealed and merkle_root(chunk.sha256 for chunk in session.chunks) != sealed:
        yield f"the chunks of session {session.id} do not give its sealed Merkle root"


def _unlisted_members(sessions: list[ArchivedSession], scan: _ArchiveScan) -> list[str]:
    listed = {MANIFEST}
    for session in sessions:
        listed.add(session.member)
        listed.update(chunk.member for chunk in session.chunks if chunk.member)
        if session.stream_tail:
            listed.add(session.stream_tail.member)
    return sorted(set(scan.digests) - listed)


def _plan(session: ArchivedSession) -> tuple[str | None, bool]:
    """Decide what restoring the session does; returns (a conflict, whether the base is needed).

    A session not in the database is created. One whose chunks all match is extended with the
    archive's newer chunks and fields if the archive is ahead of it, and left alone otherwise.
    """
    existing = Session.objects.filter(pk=session.id).first()
    known = {
        row["sequence"]: row
        for row in Chunk.objects.filter(session_id=session.id).values(
            "sequence", "sha256", "stored_sha256"
        )
    }
    archived = {chunk.sequence: chunk for chunk in session.chunks}
    needs_base = any(
        chunk.in_base is not None and chunk.sequence not in known for chunk in session.chunks
    )
    if existing is None:
        session.action = CREATE
        session.chunks_to_write = set(archived)
        session.write_tail = session.stream_tail is not None
        return None, needs_base
    different = sorted(
        sequence
        for sequence, chunk in archived.items()
        if sequence in known and known[sequence]["sha256"] != chunk.sha256
    )
    if different:
        return f"chunks {', '.join(map(str, different[:PROBLEMS_SHOWN]))} differ", needs_base
    sealed = session.record["merkle_root"]
    if sealed and existing.merkle_root and sealed != existing.merkle_root:
        return "the sealed Merkle roots differ", needs_base
    missing = set(archived) - set(known)
    ahead = (
        bool(missing)
        or session.record["stream_offset"] > existing.stream_offset
        or bool(sealed and not existing.merkle_root)
    )
    if not ahead:
        session.action = UNCHANGED
        return None, False
    if set(known) - set(archived):
        return "the database holds chunks the archive does not", needs_base
    if existing.merkle_root:
        return "the session is sealed in the database without chunks the archive holds", needs_base
    if existing.stream_offset > session.record["stream_offset"]:
        return "the database holds more stream bytes than the archive", needs_base
    session.action = EXTEND
    session.chunks_to_write = missing
    session.write_tail = session.stream_tail is not None
    return None, needs_base


def _owners_missing(sessions: list[ArchivedSession]) -> list[str]:
    user_model = get_user_model()
    wanted = {session.owner for session in sessions if session.action == CREATE}
    wanted |= {session.owner for session in sessions if session.action == EXTEND}
    present = set(
        user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__in": wanted}).values_list(
            user_model.USERNAME_FIELD, flat=True
        )
    )
    return sorted(wanted - present)


def _listing(items: list[str]) -> str:
    shown = "; ".join(items[:PROBLEMS_SHOWN])
    more = len(items) - PROBLEMS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def backup_verify(*, archive: Path, progress: ProgressFactory | None = None) -> VerifiedArchive:
    """Check the whole archive and what restoring it would do; writes nothing."""
    archive = Path(archive)
    _archive_require(archive)
    with _reading(archive, advice=RESTORE_ADVICE):
        scan = _archive_scan(archive, progress=progress)
        manifest = scan.manifest
        try:
            if manifest.get("format") != FORMAT:
                raise _Damaged("the manifest is not that of a Lucid backup")
            if manifest.get("version") != VERSION:
                raise BackupError(
                    f"{archive} has format version {manifest.get('version')}; this Lucid "
                    f"restores version {VERSION}. Restore it with the Lucid release that wrote it."
                )
            archive_id, base_id = str(manifest["id"]), manifest["base"]
            sessions = _sessions_from_manifest(manifest)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise _Damaged(f"the manifest is not valid ({error})") from error
        problems = [
            problem for session in sessions for problem in _session_problems(session, scan, base_id)
        ]
        problems += [
            f"member {name!r} is not in the manifest" for name in _unlisted_members(sessions, scan)
        ]
        if problems:
            raise _Damaged(f"{len(problems)} problems: {_listing(problems)}")
    for session in sessions:
        session.record = scan.records[session.member]
    conflicts, needing_base = [], []
    for session in sessions:
        conflict, needs_base = _plan(session)
        if conflict:
            conflicts.append(f"session {session.id}: {conflict}")
        if needs_base:
            needing_base.append(str(session.id))
    if conflicts:
        raise RestoreConflict(
            f"{len(conflicts)} sessions of {archive} exist with other data ({_listing(conflicts)})."
            " Nothing was restored; delete those sessions first if the archive should replace "
            "them, or restore another archive."
        )
    if needing_base:
        raise RestoreNeedsBase(
            f"{archive} is an incremental backup over archive {base_id}, whose chunks of "
            f"sessions {_listing(needing_base)} are not in the database. Nothing was restored; "
            f"restore the base archive {base_id} first, then this one."
        )
    return VerifiedArchive(
        path=archive,
        archive_id=archive_id,
        base_id=base_id,
        created_at=str(manifest.get("created_at", "")),
        sessions=sessions,
        owners_missing=_owners_missing(sessions),
    )


# --- restore -----------------------------------------------------------------------------------


def _member_put(store: ChunkStore, key: str, member: BinaryIO, *, expected: str) -> int:
    """Copy the member into the store under `key`; it must still be what was verified."""
    hashed = _Hashed(member)
    written = store.put(key, iter(lambda: hashed.read(READ_PIECE), b""))
    if hashed.sha256 != expected:
        store.delete(key)
        raise _Damaged("the archive changed after it was verified; run restore again")
    return written


def _owner(username: str) -> tuple[Any, bool]:
    """The user named `username`, created inactive without a password when missing."""
    user_model = get_user_model()
    user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is not None:
        return user, False
    user = user_model(**{user_model.USERNAME_FIELD: username}, is_active=False)
    user.set_unusable_password()
    user.save()
    return user, True


def _chunk_totals(session_id: uuid.UUID) -> dict[str, int]:
    """The session's running totals recounted from its chunk rows."""
    waiting = Q(status__in=[ChunkStatus.RECEIVED, ChunkStatus.PROCESSING])
    counted = {
        "chunk_count": Count("pk"),
        "size": Sum("size", default=0),
        "compressed_size": Sum("compressed_size", default=0),
        "backlog_bytes": Sum("size", filter=waiting, default=0),
        **{f"chunks_{status}": Count("pk", filter=Q(status=status)) for status in ChunkStatus},
    }
    totals = Chunk.objects.filter(session_id=session_id).aggregate(
        **{f"total_{name}": aggregate for name, aggregate in counted.items()}
    )
    return {name: totals[f"total_{name}"] for name in counted}


def _session_rows_write(session: ArchivedSession, *, archive_id: str) -> bool:
    """Write the session's rows in one transaction; True if its owner had to be created."""
    fields = _session_fields(session.record)
    now = timezone.now()
    with atomic():
        owner, owner_created = _owner(session.owner)
        if session.action == CREATE:
            row = Session(id=session.id, owner=owner, **fields)
            row.save(force_insert=True)
        else:
            list(Chunk.objects.filter(session_id=session.id).select_for_update().values("pk"))
            row = Session.objects.select_for_update().get(pk=session.id)
            tally_apply(session_id=None, tally=tallies.session_removed(session=row))
        Chunk.objects.bulk_create(
            Chunk(
                id=chunk.id,
                session_id=session.id,
                sequence=chunk.sequence,
                size=chunk.size,
                sha256=chunk.sha256,
                status=ChunkStatus.STORED,
                spool_key="",
                algorithm=chunk.algorithm,
                compressed_size=chunk.stored_size,
                stored_sha256=chunk.stored_sha256,
                storage_key=chunk.storage_key,
                processing_ms=chunk.processing_ms,
                created_at=chunk.created_at or now,
                stored_at=chunk.stored_at or now,
            )
            for chunk in session.chunks
            if chunk.sequence in session.chunks_to_write
        )
        Session.objects.filter(pk=session.id).update(
            owner=owner, **fields, **_chunk_totals(session.id)
        )
        row.refresh_from_db()
        tally_apply(session_id=None, tally=tallies.session_restored(session=row))
        audit_record(
            action=AuditAction.BACKUP_RESTORED,
            session_id=session.id,
            detail={
                "archive_id": archive_id,
                "restore": session.action,
                "chunks": len(session.chunks_to_write),
                "owner_created": owner_created,
            },
        )
    return owner_created


class _SessionFiles:
    """The files a restore writes for one session, removed again if its rows do not commit."""

    def __init__(self, session: ArchivedSession, *, archive_id: str) -> None:
        self.session = session
        self.archive_id = archive_id
        self.chunks = {chunk.sequence: chunk for chunk in session.chunks}
        self.written: list[tuple[ChunkStore, str]] = []
        self.sequences_written: set[int] = set()
        self.tail_written = False
        self.bytes = 0

    def put(self, name: str, member: BinaryIO) -> bool:
        """Store the member if the restore needs it; True if it was a chunk."""
        if match := CHUNK_MEMBER.fullmatch(name):
            chunk = self.chunks.get(int(match["sequence"]))
            if chunk is None or chunk.sequence not in self.session.chunks_to_write:
                return False
            self._put(get_chunk_store(), chunk.storage_key, member, chunk.stored_sha256)
            self.sequences_written.add(chunk.sequence)
            return True
        if TAIL_MEMBER.fullmatch(name) and self.session.write_tail:
            chunk_size = self.session.record["chunk_size"]
            stream = SessionStream(session_id=self.session.id, chunk_size=chunk_size)
            key = stream.spool_key(self.session.record["stream_offset"] // chunk_size)
            self._put(get_spool(), key, member, self.session.stream_tail.sha256)
            self.tail_written = True
        return False

    def _put(self, store: ChunkStore, key: str, member: BinaryIO, sha256: str) -> None:
        self.written.append((store, key))
        self.bytes += _member_put(store, key, member, expected=sha256)

    def commit(self) -> bool:
        """Write the rows once every file is in place; True if the owner had to be created."""
        if self.sequences_written != self.session.chunks_to_write or (
            self.tail_written != self.session.write_tail
        ):
            raise _Damaged("the archive changed after it was verified; run restore again")
        try:
            return _session_rows_write(self.session, archive_id=self.archive_id)
        except IntegrityError as error:
            raise RestoreConflict(
                f"Session {self.session.id} changed while it was being restored ({error}); "
                "run restore again: sessions already restored are skipped."
            ) from error

    def remove(self) -> None:
        for store, key in self.written:
            with suppress(ChunkStoreError):
                store.delete(key)


def _session_finish(files: _SessionFiles, *, result: RestoreResult) -> None:
    """Commit the rows of a session whose files are in place, and count it."""
    if files.commit():
        result.users_created.append(files.session.owner)
    if files.session.action == CREATE:
        result.sessions_created += 1
    else:
        result.sessions_extended += 1
    result.chunks_written += len(files.sequences_written)
    result.bytes_written += files.bytes


def backup_restore(
    *, archive: Path, dry_run: bool, progress: ProgressFactory | None = None
) -> RestoreResult:
    """Verify the whole archive, then (unless a dry run) restore each session it holds.

    Sessions already in the database with the same chunks are left alone, so restoring an
    archive twice changes nothing the second time.
    """
    archive = Path(archive)
    verified = backup_verify(archive=archive, progress=progress)
    created, extended = verified.sessions_to(CREATE), verified.sessions_to(EXTEND)
    result = RestoreResult(
        archive_id=verified.archive_id,
        dry_run=dry_run,
        sessions_unchanged=len(verified.sessions_to(UNCHANGED)),
    )
    pending = {session.id: session for session in [*created, *extended]}
    if dry_run:
        result.sessions_created, result.sessions_extended = len(created), len(extended)
        result.chunks_written = sum(len(s.chunks_to_write) for s in pending.values())
        result.bytes_written = sum(
            chunk.stored_size
            for session in pending.values()
            for chunk in session.chunks
            if chunk.sequence in session.chunks_to_write
        )
        result.users_created = verified.owners_missing
        return result
    if not pending:
        return result
    bar = _progress_start(
        progress, "restore", sum(len(s.chunks_to_write) for s in pending.values())
    )
    files: _SessionFiles | None = None
    try:
        with (
            _reading(archive, advice=RESTORE_PARTLY_ADVICE),
            _store_errors(advice=RESTORE_PARTLY_ADVICE),
        ):
            for name, member in _archive_members(archive):
                if name == MANIFEST or SESSION_MEMBER.fullmatch(name):
                    if files is not None:
                        _session_finish(files, result=result)
                        files = None
                    if match := SESSION_MEMBER.fullmatch(name):
                        session = pending.pop(uuid.UUID(match["session"]), None)
                        if session is not None:
                            files = _SessionFiles(session, archive_id=verified.archive_id)
                elif files is not None and files.put(name, member) and bar:
                    bar.advance()
    except BaseException:
        if files is not None:
            files.remove()
        raise
    finally:
        if bar:
            bar.finish()
    if pending:
        raise BackupCorrupt(
            f"{archive} changed after it was verified: sessions "
            f"{_listing([str(session_id) for session_id in pending])} were not found; "
            "run restore again."
        )
    return result
