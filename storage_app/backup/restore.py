"""Restoring a verified archive: each session's files into the store, then its rows at once.

A chunk the archive lists as damaged comes back as a row `damaged`, without a file: the session
is whole in its rows, Merkle root and manifest, that chunk answers `chunk_damaged`, and
`restore --repair` from an archive that holds it brings it back.

The rows are the session's, its chunks' and its time marks'. Each chunk's offset in the
recording is the sum of the sizes of the chunks before it: for a stopped session every chunk's,
as at stop; while recording only those with no sequence missing before them, as ingest places
them.
"""

import hashlib
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.db.models import Count, Q, Sum
from django.utils import timezone

from chunks_app.models import Chunk, TimeMark
from chunks_app.sealing import upload_spool_key
from chunks_app.selectors import chunk_sequences_complete
from chunks_app.services import chunk_offsets_place
from chunks_app.spool import RESTORED_PART, get_spool, session_stream
from chunks_app.storage import ChunkStore, ChunkStoreError, get_chunk_store
from core.audit import audit_record
from core.choices import AuditAction, ChunkStatus
from core.db import atomic_retried, lock_rows
from core.progress import ProgressFactory
from sessions_app import tallies
from sessions_app.choices import SessionStatus
from sessions_app.models import Session
from sessions_app.tallies import tally_apply
from storage_app.backup.format import (
    CHUNK_MEMBER,
    CREATE,
    EXTEND,
    MANIFEST,
    MARKS_MAX_BYTES,
    MARKS_MEMBER,
    SESSION_MEMBER,
    TAIL_MEMBER,
    UNCHANGED,
    ArchiveDamaged,
    ArchivedSession,
    BackupCorrupt,
    DamagedChunk,
    ListedChunk,
    Mark,
    RestoreConflict,
    listing,
    marks_from_record,
    session_fields,
)
from storage_app.backup.repair import RepairResult, chunks_repair
from storage_app.backup.streams import (
    archive_members,
    archive_reading,
    member_put,
    progress_start,
    store_errors,
)
from storage_app.backup.verify import VerifiedArchive, backup_verify

RESTORE_PARTLY_ADVICE = (
    "Sessions restored before this one are complete and are skipped when the restore runs "
    "again; fix this, then run it again."
)


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
    chunks_damaged: list[DamagedChunk] = field(default_factory=list)
    repair: RepairResult | None = None


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


def _chunk_row(chunk: ListedChunk, *, now: datetime, **fields: Any) -> Chunk:
    return Chunk(
        id=chunk.id,
        session_id=chunk.session_id,
        sequence=chunk.sequence,
        size=chunk.size,
        sha256=chunk.sha256,
        created_at=chunk.created_at or now,
        **fields,
    )


def _damaged_rows(session: ArchivedSession) -> list[DamagedChunk]:
    return [chunk for chunk in session.damaged if chunk.sequence in session.damaged_to_write]


def _time_marks_write(session_id: uuid.UUID, marks: list[Mark]) -> int:
    """Add the marks the session does not have yet (verifying found the others the same)."""
    present = set(
        TimeMark.objects.filter(session_id=session_id).values_list("sequence", "position")
    )
    rows = [
        TimeMark(session_id=session_id, sequence=sequence, position=position, time_ms=time_ms)
        for sequence, position, time_ms in marks
        if (sequence, position) not in present
    ]
    TimeMark.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _session_rows_write(session: ArchivedSession, *, marks: list[Mark], archive_id: str) -> bool:
    """Write the session's rows in one transaction; True if its owner had to be created."""
    fields = session_fields(session.record)
    if session.write_tail:
        fields["stream_part"] = RESTORED_PART
    now = timezone.now()

    def write() -> bool:
        owner, owner_created = _owner(session.owner)
        if session.action == CREATE:
            row = Session(id=session.id, owner=owner, **fields)
            row.save(force_insert=True)
        else:
            chunks = Chunk.objects.filter(session_id=session.id).order_by("sequence")
            list(chunks.select_for_update(of=("self",)).values("pk"))
            row = lock_rows(Session.objects.filter(pk=session.id), updated_at=now).get()
            tally_apply(session_id=None, tally=tallies.session_removed(session=row))
        Chunk.objects.bulk_create(
            [
                *(
                    _chunk_row(
                        chunk,
                        now=now,
                        status=ChunkStatus.STORED,
                        spool_key="",
                        algorithm=chunk.algorithm,
                        compressed_size=chunk.stored_size,
                        stored_sha256=chunk.stored_sha256,
                        storage_key=chunk.storage_key,
                        key_id=chunk.key_id,
                        processing_ms=chunk.processing_ms,
                        stored_at=chunk.stored_at or now,
                    )
                    for chunk in session.chunks
                    if chunk.sequence in session.chunks_to_write
                ),
                *(
                    _chunk_row(
                        chunk,
                        now=now,
                        status=ChunkStatus.DAMAGED,
                        error=f"damaged before archive {archive_id} was written: {chunk.reason}",
                        spool_key=upload_spool_key(session_id=session.id, chunk_id=chunk.id),
                    )
                    for chunk in _damaged_rows(session)
                ),
            ]
        )
        marks_written = _time_marks_write(session.id, marks)
        stopped = fields["status"] == SessionStatus.STOPPED
        chunk_offsets_place(session_id=session.id, across_gaps=stopped)
        complete = stopped and chunk_sequences_complete(session_id=session.id)
        Session.objects.filter(pk=session.id).update(
            owner=owner, **fields, **_chunk_totals(session.id), complete=complete
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
                "damaged": len(session.damaged_to_write),
                "time_marks": marks_written,
                "owner_created": owner_created,
            },
        )
        return owner_created

    return atomic_retried(write)


class _SessionFiles:
    """The files a restore writes for one session, removed again if its rows do not commit."""

    def __init__(self, session: ArchivedSession, *, verified: VerifiedArchive) -> None:
        self.session = session
        self.archive_id = verified.archive_id
        self.member_sha256 = verified.member_sha256
        self.chunks = {chunk.sequence: chunk for chunk in session.chunks}
        self.written: list[tuple[ChunkStore, str]] = []
        self.sequences_written: set[int] = set()
        self.tail_written = False
        self.marks: list[Mark] | None = None
        self.bytes = 0

    def put(self, name: str, member: BinaryIO) -> bool:
        """Store the member if the restore needs it (time marks: keep them for the rows);
        True if it was a chunk."""
        if MARKS_MEMBER.fullmatch(name) and self.session.time_marks is not None:
            self.marks = self._marks(name, member)
            return False
        if match := CHUNK_MEMBER.fullmatch(name):
            chunk = self.chunks.get(int(match["sequence"]))
            if chunk is None or chunk.sequence not in self.session.chunks_to_write:
                return False
            self._put(get_chunk_store(), chunk.storage_key, name, member)
            self.sequences_written.add(chunk.sequence)
            return True
        if TAIL_MEMBER.fullmatch(name) and self.session.write_tail:
            chunk_size = self.session.record["chunk_size"]
            stream = session_stream(session_id=self.session.id, chunk_size=chunk_size)
            key = stream.tail_key(
                sequence=self.session.record["stream_offset"] // chunk_size,
                sealed=self.session.stream_tail.key_id is not None,
            )
            self._put(get_spool(), key, name, member)
            self.tail_written = True
        return False

    def _marks(self, name: str, member: BinaryIO) -> list[Mark]:
        """The marks of the member, which must be the bytes verified."""
        data = member.read(MARKS_MAX_BYTES + 1)
        if hashlib.sha256(data).hexdigest() != self.member_sha256.get(name):
            raise ArchiveDamaged("the archive changed after it was verified; run restore again")
        return marks_from_record(data)

    def _put(self, store: ChunkStore, key: str, name: str, member: BinaryIO) -> None:
        """Copy the member as it is (sealed or not), which must be the bytes verified."""
        self.written.append((store, key))
        expected = self.member_sha256.get(name, "")
        self.bytes += member_put(store, key, member, expected=expected)

    def commit(self) -> bool:
        """Write the rows once every file is in place; True if the owner had to be created."""
        if (
            self.sequences_written != self.session.chunks_to_write
            or self.tail_written != self.session.write_tail
            or (self.marks is None) != (self.session.time_marks is None)
        ):
            raise ArchiveDamaged("the archive changed after it was verified; run restore again")
        try:
            return _session_rows_write(
                self.session, marks=self.marks or [], archive_id=self.archive_id
            )
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
    result.chunks_damaged += _damaged_rows(files.session)


def _sessions_counted(
    verified: VerifiedArchive, pending: dict[uuid.UUID, ArchivedSession], *, result: RestoreResult
) -> None:
    """Count what restoring the pending sessions would write."""
    result.sessions_created = len(verified.sessions_to(CREATE))
    result.sessions_extended = len(verified.sessions_to(EXTEND))
    result.chunks_written = sum(len(s.chunks_to_write) for s in pending.values())
    result.bytes_written = sum(
        chunk.stored_size
        for session in pending.values()
        for chunk in session.chunks
        if chunk.sequence in session.chunks_to_write
    )
    result.chunks_damaged = [chunk for s in pending.values() for chunk in _damaged_rows(s)]
    result.users_created = verified.owners_missing


def _sessions_restored(
    archive: Path,
    verified: VerifiedArchive,
    pending: dict[uuid.UUID, ArchivedSession],
    *,
    result: RestoreResult,
    progress: ProgressFactory | None,
) -> None:
    """Write the pending sessions, one at a time, as the archive's members pass."""
    bar = progress_start(progress, "restore", sum(len(s.chunks_to_write) for s in pending.values()))
    files: _SessionFiles | None = None
    try:
        with (
            archive_reading(archive, advice=RESTORE_PARTLY_ADVICE),
            store_errors(advice=RESTORE_PARTLY_ADVICE),
        ):
            for name, member in archive_members(archive):
                if name == MANIFEST or SESSION_MEMBER.fullmatch(name):
                    if files is not None:
                        _session_finish(files, result=result)
                        files = None
                    if match := SESSION_MEMBER.fullmatch(name):
                        session = pending.pop(uuid.UUID(match["session"]), None)
                        if session is not None:
                            files = _SessionFiles(session, verified=verified)
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
            f"{listing([str(session_id) for session_id in pending])} were not found; "
            "run restore again."
        )


def backup_restore(
    *, archive: Path, dry_run: bool, repair: bool = False, progress: ProgressFactory | None = None
) -> RestoreResult:
    """Verify the whole archive, then (unless a dry run) restore each session it holds; with
    `repair`, then repair the damaged or missing chunks of the sessions already present.

    Sessions already in the database with the same chunks are left alone, so restoring an
    archive twice changes nothing the second time.
    """
    archive = Path(archive)
    verified = backup_verify(archive=archive, progress=progress)
    result = RestoreResult(
        archive_id=verified.archive_id,
        dry_run=dry_run,
        sessions_unchanged=len(verified.sessions_to(UNCHANGED)),
    )
    pending = {s.id: s for s in [*verified.sessions_to(CREATE), *verified.sessions_to(EXTEND)]}
    if dry_run:
        _sessions_counted(verified, pending, result=result)
    elif pending:
        _sessions_restored(archive, verified, pending, result=result, progress=progress)
    if repair:
        present = [session.id for session in verified.sessions if session.action != CREATE]
        result.repair = chunks_repair(
            verified=verified, session_ids=present, dry_run=dry_run, progress=progress
        )
    return result
