"""Repairing chunks from a verified archive: damaged or missing files written again, rows `stored`.

A chunk needs repair when its row is `damaged`, `stored` (or `failed` after cleanup found its
file gone) while its file in the chunk store is missing or of another size (a sealed file's
records must end where its last byte's record ends), or `failed` while its bytes are missing
from the spool.
Flipped bytes in a file of the right size are found by `verify` or any read, which mark the
chunk `damaged`. A chunk is repaired when the archive holds its bytes and they decompress to the
row's sha256 (checked when the archive was verified, and the bytes again as they are copied):
the file is written as archived, perhaps in another codec or under another key, and the row
takes the archived codec, key, size and hashes, with the running totals and an audit entry, in
one transaction. Nothing is deleted but a replaced file, so legal hold does not stand in the way.
"""

import logging
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.db.models import Sum
from django.utils import timezone

from chunks_app.models import Chunk
from chunks_app.spool import get_spool
from chunks_app.storage import ChunkNotFoundError, ChunkStore, ChunkStoreError, get_chunk_store
from core.audit import audit_record
from core.choices import AuditAction, ChunkStatus
from core.db import atomic_retried
from core.encryption import AuthenticationFailed, record_boundary
from core.progress import ProgressFactory
from sessions_app import tallies
from sessions_app.models import Session
from sessions_app.tallies import tally_apply
from storage_app.backup.format import ArchivedChunk, ArchivedSession, BackupCorrupt, listing
from storage_app.backup.streams import (
    archive_members,
    archive_reading,
    member_put,
    progress_start,
    store_errors,
)
from storage_app.backup.verify import VerifiedArchive, archive_verify

REPAIR_ADVICE = "Chunks repaired before this one stay repaired; fix this, then repair again."
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkRepair:
    """A chunk that needs repair: what is wrong, and why this archive cannot repair it if so."""

    session_id: uuid.UUID
    sequence: int
    problem: str
    obstacle: str | None = None

    def __str__(self) -> str:
        return f"session {self.session_id} chunk {self.sequence} ({self.problem})"


@dataclass
class RepairResult:
    archive: Path
    archive_id: str
    dry_run: bool
    sessions: set[uuid.UUID] = field(default_factory=set)
    chunks_checked: int = 0
    repaired: list[ChunkRepair] = field(default_factory=list)
    unrepairable: list[ChunkRepair] = field(default_factory=list)


@dataclass(frozen=True)
class _Planned:
    chunk_id: uuid.UUID
    archived: ArchivedChunk
    repair: ChunkRepair


def _problem(chunk: Chunk) -> str | None:
    """What is wrong with the chunk, as its status and its file's size tell; None if nothing."""
    if chunk.status == ChunkStatus.DAMAGED:
        return chunk.error or "damaged"
    if chunk.status == ChunkStatus.FAILED and not chunk.storage_key:
        missing = chunk.spool_key and not get_spool().exists(chunk.spool_key)
        return "file missing from the spool" if missing else None
    if chunk.status not in (ChunkStatus.STORED, ChunkStatus.FAILED):
        return None
    store = get_chunk_store()
    try:
        size = store.size(chunk.storage_key)
        expected = _file_size(store, chunk)
    except ChunkNotFoundError:
        return "file missing from the chunk store"
    except AuthenticationFailed as error:
        return f"not a whole sealed file in the chunk store: {error}"
    if size < expected:
        return f"truncated in the chunk store: {size} of {expected} bytes"
    if size > expected:
        return f"size mismatch in the chunk store: {size} bytes, {expected} expected"
    return None


def _file_size(store: ChunkStore, chunk: Chunk) -> int:
    """The size the chunk's file in the store has when whole: its compressed size, and if it is
    sealed, up to the end of the record holding its last byte (record headers are read)."""
    if chunk.key_id is None:
        return chunk.compressed_size
    with store.open(chunk.storage_key) as file:
        return record_boundary(file, position=chunk.compressed_size)


def _obstacle(chunk: Chunk, archived: ArchivedChunk | None, session: ArchivedSession) -> str | None:
    """Why the archive cannot repair the chunk; None if it can."""
    if archived is None:
        if any(damaged.sequence == chunk.sequence for damaged in session.damaged):
            return "the archive lists it as damaged too"
        return "the archive does not hold it"
    if archived.sha256 != chunk.sha256:
        return "the archive holds other bytes for it"
    if archived.in_base is not None:
        return f"its bytes are in the base archive {archived.in_base}: repair from that one"
    return None


def _planned(
    sessions: list[ArchivedSession],
    *,
    result: RepairResult,
    progress: ProgressFactory | None,
) -> dict[str, _Planned]:
    """The repairs the archive can make, by member name; the others go to `unrepairable`."""
    present = Session.objects.filter(pk__in=[session.id for session in sessions])
    result.sessions = set(present.values_list("pk", flat=True))
    total = present.aggregate(chunks=Sum("chunk_count", default=0))["chunks"]
    bar = progress_start(progress, "check", total)
    planned: dict[str, _Planned] = {}
    try:
        for session in sessions:
            archived = {chunk.sequence: chunk for chunk in session.chunks}
            rows = Chunk.objects.filter(session_id=session.id).order_by("sequence")
            for chunk in rows.iterator():
                result.chunks_checked += 1
                if bar:
                    bar.advance()
                if (problem := _problem(chunk)) is None:
                    continue
                found = archived.get(chunk.sequence)
                if obstacle := _obstacle(chunk, found, session):
                    result.unrepairable.append(
                        ChunkRepair(session.id, chunk.sequence, problem, obstacle)
                    )
                else:
                    repair = ChunkRepair(session.id, chunk.sequence, problem)
                    planned[found.member] = _Planned(chunk.pk, found, repair)
    finally:
        if bar:
            bar.finish()
    return planned


def _chunk_repair(planned: _Planned, member: BinaryIO, *, archive_id: str, expected: str) -> bool:
    """Write the archived bytes as they are (sealed or not; `expected` is their sha256 as
    verified), then make the row say so; False if the chunk is gone."""
    archived, store = planned.archived, get_chunk_store()
    member_put(store, archived.storage_key, member, expected=expected)

    def repair() -> Chunk | None:
        chunk = Chunk.objects.select_for_update().filter(pk=planned.chunk_id).first()
        if chunk is None:
            store.delete(archived.storage_key)
            return None
        tally = tallies.chunk_repaired(
            source=chunk.status,
            size=chunk.size,
            stored_size_change=archived.stored_size - (chunk.compressed_size or 0),
        )
        Chunk.objects.filter(pk=chunk.pk).update(
            status=ChunkStatus.STORED,
            algorithm=archived.algorithm,
            compressed_size=archived.stored_size,
            stored_sha256=archived.stored_sha256,
            storage_key=archived.storage_key,
            key_id=archived.key_id,
            error="",
            stored_at=chunk.stored_at or archived.stored_at or timezone.now(),
        )
        tally_apply(session_id=chunk.session_id, tally=tally)
        audit_record(
            action=AuditAction.CHUNK_REPAIRED,
            session_id=chunk.session_id,
            sequence=chunk.sequence,
            detail={
                "archive_id": archive_id,
                "problem": planned.repair.problem,
                "status": chunk.status,
                "algorithm": archived.algorithm,
                "key_id": archived.key_id,
            },
        )
        return chunk

    chunk = atomic_retried(repair)
    if chunk is None:
        return False
    if chunk.storage_key and chunk.storage_key != archived.storage_key:
        with suppress(ChunkStoreError):
            store.delete(chunk.storage_key)
    logger.info("chunk %s repaired from archive %s", chunk, archive_id)
    return True


def _repairs_write(
    verified: VerifiedArchive,
    planned: dict[str, _Planned],
    *,
    result: RepairResult,
    progress: ProgressFactory | None,
) -> None:
    """Copy each planned chunk out of the archive as its member passes."""
    bar = progress_start(progress, "repair", len(planned))
    try:
        with (
            archive_reading(verified.path, advice=REPAIR_ADVICE),
            store_errors(advice=REPAIR_ADVICE),
        ):
            for name, member in archive_members(verified.path):
                if (item := planned.pop(name, None)) is None:
                    continue
                expected = verified.member_sha256.get(name, "")
                if _chunk_repair(item, member, archive_id=verified.archive_id, expected=expected):
                    result.repaired.append(item.repair)
                if bar:
                    bar.advance()
                if not planned:
                    break
    finally:
        if bar:
            bar.finish()
    if planned:
        raise BackupCorrupt(
            f"{verified.path} changed after it was verified: {listing(list(planned))} were not "
            f"found. {REPAIR_ADVICE}"
        )


def chunks_repair(
    *,
    verified: VerifiedArchive,
    session_ids: list[uuid.UUID] | None = None,
    dry_run: bool,
    progress: ProgressFactory | None = None,
) -> RepairResult:
    """Repair the chunks of the archive's sessions (those given, or all) that need it."""
    wanted = None if session_ids is None else set(session_ids)
    sessions = [s for s in verified.sessions if wanted is None or s.id in wanted]
    result = RepairResult(archive=verified.path, archive_id=verified.archive_id, dry_run=dry_run)
    with store_errors(advice=REPAIR_ADVICE):
        planned = _planned(sessions, result=result, progress=progress)
    if dry_run:
        result.repaired = [item.repair for item in planned.values()]
    elif planned:
        _repairs_write(verified, planned, result=result, progress=progress)
    return result


def backup_repair(
    *,
    archive: Path,
    session_ids: list[uuid.UUID] | None,
    dry_run: bool,
    progress: ProgressFactory | None = None,
) -> RepairResult:
    """Verify the whole archive, then repair the chunks of its sessions (those given, or all)."""
    verified = archive_verify(archive=archive, progress=progress)
    return chunks_repair(
        verified=verified, session_ids=session_ids, dry_run=dry_run, progress=progress
    )
