"""Writing backups: sessions, their chunks as stored and a manifest into one archive; rotation."""

import hashlib
import io
import json
import tarfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from django.utils import timezone

from chunks_app.models import Chunk, TimeMark
from chunks_app.sealing import chunk_seal
from chunks_app.selectors import ChunkDamaged, KeptFile, chunk_read_kept_file
from chunks_app.services import chunk_mark_damaged
from chunks_app.spool import SessionStream, session_stream
from core.audit import audit_record
from core.choices import AuditAction, ChunkStatus, CompressionAlgorithm
from core.counters import counters_set
from core.errors import NotFound, ValidationFailed
from core.progress import ProgressFactory
from sessions_app.choices import IngestMode, SessionStatus
from sessions_app.models import Session
from storage_app.backup.format import (
    ARCHIVE_NAME,
    ARCHIVE_PREFIX,
    ARCHIVE_SUFFIX,
    FORMAT,
    MANIFEST,
    VERSION,
    ArchiveDamaged,
    BackupError,
    DamagedChunk,
    chunk_entry,
    chunk_member_name,
    damaged_entry,
    damaged_from_entry,
    marks_member_name,
    marks_record,
    session_member_name,
    session_record,
    tail_member_name,
)
from storage_app.backup.streams import (
    archive_file,
    archive_members,
    archive_reading,
    archive_require,
    member_add,
    mib_progress,
    progress_start,
    store_errors,
)

BACKUP_STORE_ADVICE = "No archive was written; fix this, then run the backup again."
LAST_SUCCESS_COUNTER = "backup.last_success_timestamp"
DAMAGED_COUNTER = "backup.damaged_chunks"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    archive_id: str
    base_id: str | None
    session_count: int
    chunk_count: int
    chunks_in_base: int
    size: int
    damaged: list[DamagedChunk]


def _held_chunks(archive: Path, *, progress: ProgressFactory | None) -> tuple[str, dict]:
    """The id of a previous archive and the stored_sha256 and key_id of each chunk it holds,
    by place."""
    archive_require(archive)
    read_progress = mib_progress(progress, "read base", archive)
    manifest = None
    try:
        with archive_reading(
            archive, advice="Make a full backup instead (leave out --incremental)."
        ):
            for name, member in archive_members(archive, on_read=read_progress):
                if name == MANIFEST:
                    manifest = json.loads(member.read())
            try:
                held = {
                    (entry["session"], entry["sequence"]): (
                        entry["stored_sha256"],
                        entry.get("key_id"),
                    )
                    for entry in manifest["chunks"]
                }
                return str(manifest["id"]), held
            except (KeyError, TypeError) as error:
                raise ArchiveDamaged(f"its manifest is missing or not valid ({error})") from error
    finally:
        read_progress.finish()


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


@dataclass(frozen=True)
class _Snapshot:
    marks: list[TimeMark]
    chunks: list[Chunk]
    tail: KeptFile | None = None


def _marks_and_chunks(session: Session) -> tuple[list[TimeMark], list[Chunk]]:
    """The session's marks, then its chunks: a mark commits with its chunk or after it, so
    every mark read lies in a chunk read (or in the stream past them)."""
    marks = list(TimeMark.objects.filter(session=session))
    return marks, list(Chunk.objects.filter(session=session).order_by("sequence"))


def _session_snapshot(session: Session) -> _Snapshot:
    """The session's current fields, its time marks, its chunks and the stream bytes past
    them, consistently.

    A stream still recording is locked meanwhile, so no chunk can be cut from it and no mark
    added in between.
    """
    _session_refresh(session)
    live_stream = session.ingest_mode == IngestMode.STREAM and session.status in (
        SessionStatus.RECORDING,
        SessionStatus.PAUSED,
    )
    if not live_stream:
        return _Snapshot(*_marks_and_chunks(session))
    stream = session_stream(session_id=session.pk, chunk_size=session.chunk_size)
    with stream.locked():
        _session_refresh(session)
        marks, chunks = _marks_and_chunks(session)
        sequence, size = divmod(session.stream_offset, session.chunk_size)
        if not size or any(chunk.sequence == sequence for chunk in chunks):
            return _Snapshot(marks, chunks)
        tail = _stream_tail(stream, sequence=sequence, size=size, part=session.stream_part)
        return _Snapshot(marks, chunks, tail)


def _stream_tail(stream: SessionStream, *, sequence: int, size: int, part: str) -> KeptFile:
    """The acknowledged `size` bytes of the open segment (call under `stream.locked()`), as
    the archive keeps them: sealed again under the segment's key if it is sealed, since the
    segment file may hold records past them that were never acknowledged."""
    held = stream.has_segment(sequence=sequence, part=part)
    tail = stream.read(sequence=sequence, size=size, part=part) if held else b""
    if len(tail) != size:
        raise BackupError(
            f"The acknowledged stream bytes of session {stream.session_id} past its last chunk "
            f"are missing from the spool; run `manage.py verify --session {stream.session_id}`, "
            "or back up the other sessions with --session."
        )
    key_id = stream.segment_key_id(sequence=sequence, part=part)
    content = chunk_seal([tail], session_id=stream.session_id, sequence=sequence, key_id=key_id)
    return KeptFile(
        content=b"".join(content),
        algorithm=CompressionAlgorithm.NONE,
        size=size,
        sha256=hashlib.sha256(tail).hexdigest(),
        key_id=key_id,
    )


def _chunk_kept(chunk: Chunk) -> KeptFile:
    """The chunk's file as kept (sealed or not), checked against its row.

    A chunk not stored yet comes from the spool, in algorithm `none`; if the pipeline stores it
    meanwhile and removes the spool file, from the store. Damage found is marked and raises
    `ChunkDamaged`.
    """
    try:
        return chunk_read_kept_file(chunk=chunk)
    except ChunkDamaged as damage:
        chunk_mark_damaged(chunk_id=damage.chunk_id, reason=damage.reason)
        raise


@dataclass
class _ArchiveWriter:
    """What one backup adds to its tar stream, and the manifest it collects meanwhile."""

    tar: tarfile.TarFile
    mtime: int
    base_id: str | None
    held: dict
    sessions: list[dict] = field(default_factory=list)
    chunks: list[dict] = field(default_factory=list)
    damaged: list[dict] = field(default_factory=list)

    def add_session(
        self, session: Session, *, marks: list[TimeMark], tail: KeptFile | None
    ) -> None:
        name = session_member_name(session_id=session.pk)
        record = json.dumps(session_record(session), sort_keys=True).encode()
        digest = self._add(name, io.BytesIO(record), len(record))
        time_marks = None
        if marks:
            member, data = marks_member_name(session_id=session.pk), marks_record(marks)
            marks_digest = self._add(member, io.BytesIO(data), len(data))
            time_marks = {"member": member, "sha256": marks_digest, "count": len(marks)}
        stream_tail = None
        if tail is not None:
            member = tail_member_name(session_id=session.pk, key_id=tail.key_id)
            self._add(member, io.BytesIO(tail.content), len(tail.content))
            stream_tail = {
                "member": member,
                "size": tail.size,
                "sha256": tail.sha256,
                "key_id": tail.key_id,
            }
        self.sessions.append(
            {
                "id": str(session.pk),
                "member": name,
                "sha256": digest,
                "stream_tail": stream_tail,
                "time_marks": time_marks,
            }
        )

    def add_chunk(self, chunk: Chunk) -> None:
        """Add the chunk's entry and its bytes unless the base holds them; list it if damaged."""
        if chunk.status == ChunkStatus.DAMAGED:
            self.damaged.append(damaged_entry(chunk, reason=chunk.error or "damaged"))
            return
        try:
            kept = _chunk_kept(chunk)
        except ChunkDamaged as damage:
            self.damaged.append(damaged_entry(chunk, reason=damage.reason))
            return
        entry = chunk_entry(
            chunk,
            algorithm=kept.algorithm,
            stored_size=kept.size,
            stored_sha256=kept.sha256,
            key_id=kept.key_id,
        )
        if self.held.get((entry["session"], entry["sequence"])) == (kept.sha256, kept.key_id):
            self.chunks.append({**entry, "in_base": self.base_id})
            return
        name = chunk_member_name(
            session_id=chunk.session_id,
            sequence=chunk.sequence,
            algorithm=kept.algorithm,
            key_id=kept.key_id,
        )
        try:
            self._add(name, io.BytesIO(kept.content), len(kept.content))
        except OSError as error:
            raise BackupError(
                f"Could not copy chunk {chunk.sequence} of session {chunk.session_id} "
                f"into the archive: {error}. Check free space where the archive goes, then "
                "run the backup again."
            ) from error
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
            "damaged": self.damaged,
        }
        data = json.dumps(manifest, sort_keys=True).encode()
        self._add(MANIFEST, io.BytesIO(data), len(data))

    def _add(self, name: str, stream: BinaryIO, size: int) -> str:
        return member_add(self.tar, name=name, size=size, stream=stream, mtime=self.mtime)


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
    bar = progress_start(progress, "backup", sum(session.chunk_count for session in sessions))
    created_at = timezone.now()
    archive_id = str(uuid.uuid4())
    try:
        with archive_file(output) as tar, store_errors(advice=BACKUP_STORE_ADVICE):
            archive = _ArchiveWriter(
                tar=tar, mtime=int(created_at.timestamp()), base_id=base_id, held=held
            )
            for session in sessions:
                snapshot = _session_snapshot(session)
                archive.add_session(session, marks=snapshot.marks, tail=snapshot.tail)
                for chunk in snapshot.chunks:
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
        damaged=[damaged_from_entry(entry) for entry in archive.damaged],
    )
    if session_ids is None and since is None:
        counters_set(
            {
                LAST_SUCCESS_COUNTER: int(timezone.now().timestamp()),
                DAMAGED_COUNTER: len(result.damaged),
            }
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
            "damaged": len(result.damaged),
        },
    )
    return result


def _scheduled_archives(directory: Path) -> list[Path]:
    """The lucid-backup-*.tar.zst files in `directory`, oldest first (by modification time)."""
    if not directory.is_dir():
        return []
    return sorted(
        (
            path
            for path in directory.iterdir()
            if ARCHIVE_NAME.fullmatch(path.name) and path.is_file()
        ),
        key=lambda path: (path.stat().st_mtime, path.name),
    )


def backup_newest(*, directory: Path) -> Path:
    """The newest lucid-backup-*.tar.zst file in `directory`, as rotation orders them."""
    archives = _scheduled_archives(Path(directory))
    if not archives:
        raise NotFound(
            f"There is no backup in {directory}; run `manage.py backup` or wait for the "
            "scheduled one."
        )
    return archives[-1]


def backup_rotate(*, directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` lucid-backup-*.tar.zst files (by modification time).

    Returns the paths removed.
    """
    if keep < 1:
        raise ValidationFailed(
            "keep must be at least 1: rotation never deletes the last backup.",
            fields={"keep": ["Must be at least 1."]},
        )
    removed = _scheduled_archives(Path(directory))[:-keep]
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
