"""Key rotation: every chunk's kept file and every open stream tail rewritten under one key.

A chunk is read and checked, sealed under the new key to a new name, and its row moved to that
name only if it still names the file that was read (a compare-and-set in one transaction); the
old file goes after the commit. A run killed at any point leaves every chunk readable: its row
names a whole file, and the other file is an orphan `cleanup` removes. A rerun picks up the
chunks still under another key. Chunks already `damaged` are left as they are.
"""

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DatabaseError
from django.db.models import Count, Q, QuerySet

from chunks_app.models import Chunk
from chunks_app.sealing import chunk_seal, stored_key, upload_spool_key
from chunks_app.selectors import ChunkDamaged, chunk_read_stored
from chunks_app.services import chunk_mark_damaged, session_files_delete
from chunks_app.spool import get_spool, session_stream
from chunks_app.storage import ChunkStore, ChunkStoreError, get_chunk_store
from core.choices import ChunkStatus
from core.db import atomic_retried
from core.encryption import KeyNotConfigured, key_ring
from core.errors import ValidationFailed
from core.progress import ProgressFactory
from sessions_app.choices import IngestMode, SessionStatus
from sessions_app.models import Session

logger = logging.getLogger(__name__)

BATCH = 500
ATTEMPTS = 2
RECORDING_STATUSES = (SessionStatus.RECORDING, SessionStatus.PAUSED)


@dataclass
class Rewritten:
    """Chunks rewritten (or to be) from one key, and the bytes of their kept files."""

    chunks: int = 0
    bytes: int = 0


@dataclass
class KeptUnder:
    """Chunks kept under one key now, and how many of them are `damaged`."""

    chunks: int = 0
    damaged: int = 0


@dataclass
class RotationReport:
    """What a rotation to `key_id` did or, with `dry_run`, would do; `remaining` is read after."""

    key_id: str
    dry_run: bool
    active_id: str | None
    configured: list[str]
    rewritten: dict[str | None, Rewritten] = field(default_factory=lambda: defaultdict(Rewritten))
    tails: int = 0
    damaged: list[str] = field(default_factory=list)
    changed: int = 0
    errors: list[str] = field(default_factory=list)
    remaining: dict[str | None, KeptUnder] = field(default_factory=dict)

    @property
    def removable(self) -> list[str]:
        """The configured keys this run rewrote chunks from that no chunk and no open stream
        tail needs any more, after a run without errors."""
        if self.dry_run or self.errors:
            return []
        needed = {self.key_id, self.active_id, *self.remaining}
        return [key_id for key_id in self.configured if key_id in self.rewritten.keys() - needed]


def _target_checked(key_id: str) -> None:
    ring = key_ring()
    if not ring.has(key_id):
        configured = ", ".join(ring.key_ids) or "none"
        raise ValidationFailed(
            f"Key '{key_id}' is not configured (keys configured: {configured}). Add it to "
            "LUCID_ENCRYPTION_KEYS_FILE (or LUCID_ENCRYPTION_KEYS) on every role and restart "
            "them first, so that every role can read what is rewritten; `manage.py generate_key "
            "ID` makes a key.",
            code="encryption_key_missing",
        )


def _not_under(key_id: str) -> QuerySet[Chunk]:
    """Chunks kept under another key (or none) that are not known to be damaged."""
    other_key = Q(key_id__isnull=True) | ~Q(key_id=key_id)
    return Chunk.objects.filter(other_key).exclude(status=ChunkStatus.DAMAGED).order_by("pk")


def _in_batches(chunks: QuerySet[Chunk]) -> Iterator[Chunk]:
    """`chunks` (ordered by primary key) read BATCH at a time, each batch after the last one."""
    last: uuid.UUID | None = None
    while batch := list((chunks if last is None else chunks.filter(pk__gt=last))[:BATCH]):
        yield from batch
        last = batch[-1].pk


def _kept_size(chunk: Chunk) -> int:
    return chunk.compressed_size if chunk.storage_key else chunk.size


def _chunk_moved(*, chunk: Chunk, content: bytes, key_id: str) -> bool:
    """Seal the chunk's kept bytes `content` under `key_id` to a new name and point the row at
    it if the row is still as read; then remove the old file. False if the row changed."""
    if chunk.storage_key:
        store, name_field = get_chunk_store(), "storage_key"
        new = stored_key(
            session_id=chunk.session_id,
            sequence=chunk.sequence,
            algorithm=chunk.algorithm,
            key_id=key_id,
        )
    else:
        store, name_field = get_spool(), "spool_key"
        new = upload_spool_key(session_id=chunk.session_id, chunk_id=chunk.pk, key_id=key_id)
    sealed = chunk_seal(
        [content], session_id=chunk.session_id, sequence=chunk.sequence, key_id=key_id
    )
    store.put(new, sealed)
    as_read = Chunk.objects.filter(
        pk=chunk.pk, storage_key=chunk.storage_key, spool_key=chunk.spool_key, key_id=chunk.key_id
    )
    if atomic_retried(lambda: as_read.update(**{name_field: new, "key_id": key_id})):
        _old_file_delete(store=store, key=getattr(chunk, name_field))
        return True
    current = Chunk.objects.filter(pk=chunk.pk).only(name_field).first()
    if current is None or getattr(current, name_field) != new:
        store.delete(new)
    return False


def _old_file_delete(*, store: ChunkStore, key: str) -> None:
    """Remove a file no row names any more; one that cannot go is left to `cleanup`."""
    try:
        store.delete(key)
    except ChunkStoreError as error:
        logger.warning("key rotation left %s for cleanup to remove: %s", key, error)


def _chunk_rotate(*, chunk: Chunk, key_id: str, report: RotationReport) -> None:
    """Rewrite one chunk's kept file under `key_id`; a row that changed meanwhile is read again
    and tried once more, then left for the next run."""
    for _ in range(ATTEMPTS):
        try:
            content = b"".join(chunk_read_stored(chunk=chunk))
        except ChunkDamaged as damage:
            chunk_mark_damaged(chunk_id=damage.chunk_id, reason=damage.reason)
            report.damaged.append(f"{chunk.session_id}#{chunk.sequence}: {damage.reason}")
            return
        except Chunk.DoesNotExist:
            return
        if chunk.key_id == key_id:
            return
        from_key = chunk.key_id
        if _chunk_moved(chunk=chunk, content=content, key_id=key_id):
            report.rewritten[from_key].chunks += 1
            report.rewritten[from_key].bytes += len(content)
            return
        chunk = Chunk.objects.filter(pk=chunk.pk).first()
        if chunk is None or chunk.key_id == key_id or chunk.status == ChunkStatus.DAMAGED:
            return
    report.changed += 1


def _stream_tails() -> Iterator[Session]:
    """Sessions still filling a stream segment (as last read; check again under its lock)."""
    sessions = Session.objects.filter(status__in=RECORDING_STATUSES, ingest_mode=IngestMode.STREAM)
    fields = ("id", "chunk_size", "stream_offset", "stream_part")
    for session in sessions.only(*fields).order_by("pk"):
        if session.stream_offset % session.chunk_size:
            yield session


def _tail_needs_reseal(*, session: Session, key_id: str) -> bool:
    """Whether the session's open stream segment is kept other than under `key_id`."""
    stream = session_stream(session_id=session.pk, chunk_size=session.chunk_size)
    sequence, part = session.stream_offset // session.chunk_size, session.stream_part
    if not stream.has_segment(sequence=sequence, part=part):
        return False
    return stream.segment_key_id(sequence=sequence, part=part) != key_id


def _tail_reseal(*, session: Session, key_id: str) -> bool:
    """Rewrite the session's open stream segment under `key_id`, under the stream's lock."""
    stream = session_stream(session_id=session.pk, chunk_size=session.chunk_size)
    with stream.locked():
        fields = ("status", "stream_offset", "stream_part")
        current = Session.objects.filter(pk=session.pk).only(*fields).first()
        if current is None:
            session_files_delete(session_id=session.pk)
            return False
        if current.status not in RECORDING_STATUSES:
            return False
        offset, part = current.stream_offset, current.stream_part
        resealed = stream.reseal(offset=offset, part=part, key_id=key_id)
        if resealed is None:
            return False
        if resealed.part == part:
            return True
        recorded = Session.objects.filter(pk=session.pk, stream_offset=offset, stream_part=part)
        if not recorded.update(stream_part=resealed.part):
            return False
        stream.discard(keys=resealed.replaced)
        return True


@contextmanager
def _errors_recorded(errors: list[str], what: str) -> Iterator[None]:
    """Record a storage, database or missing-key failure of one item and go on with the next."""
    try:
        yield
    except (ChunkStoreError, DatabaseError, KeyNotConfigured) as error:
        logger.warning("key rotation could not rewrite %s: %s", what, error)
        errors.append(f"could not rewrite {what}: {error}")


def chunks_by_key() -> dict[str | None, KeptUnder]:
    """How many chunks are kept under each key (None: plaintext) now."""
    counts: dict[str | None, KeptUnder] = defaultdict(KeptUnder)
    rows = Chunk.objects.values("key_id", "status").annotate(chunks=Count("id")).order_by()
    for row in rows:
        kept = counts[row["key_id"]]
        kept.chunks += row["chunks"]
        if row["status"] == ChunkStatus.DAMAGED:
            kept.damaged += row["chunks"]
    return dict(counts)


def keys_rotate(
    *, key_id: str, dry_run: bool, progress: ProgressFactory | None = None
) -> RotationReport:
    """Rewrite every open stream tail, then every chunk not `damaged`, under the configured key
    `key_id`. With `dry_run` nothing is written: the report says what would be rewritten."""
    _target_checked(key_id)
    ring = key_ring()
    report = RotationReport(
        key_id=key_id, dry_run=dry_run, active_id=ring.active_id, configured=ring.key_ids
    )
    for session in _stream_tails():
        with _errors_recorded(report.errors, f"the open stream tail of session {session.pk}"):
            if dry_run:
                report.tails += _tail_needs_reseal(session=session, key_id=key_id)
            else:
                report.tails += _tail_reseal(session=session, key_id=key_id)
    pending = _not_under(key_id)
    total = pending.count()
    shown = progress and total and not dry_run
    display = progress(f"rotating to key {key_id}", total) if shown else None
    for chunk in _in_batches(pending):
        if dry_run:
            report.rewritten[chunk.key_id].chunks += 1
            report.rewritten[chunk.key_id].bytes += _kept_size(chunk)
        else:
            with _errors_recorded(report.errors, f"chunk {chunk.session_id}#{chunk.sequence}"):
                _chunk_rotate(chunk=chunk, key_id=key_id, report=report)
        if display:
            display.advance()
    if display:
        display.finish()
    report.remaining = chunks_by_key()
    if not dry_run:
        logger.info(
            "keys rotated to %s: %d chunks rewritten, %d stream tails resealed, %d damaged, "
            "%d changed meanwhile, %d errors",
            key_id,
            sum(rewritten.chunks for rewritten in report.rewritten.values()),
            report.tails,
            len(report.damaged),
            report.changed,
            len(report.errors),
        )
    return report
