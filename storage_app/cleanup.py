"""Orphan cleanup: files no row needs, rows whose file is gone, leftovers of interrupted writes.

Files count only once older than LUCID_ORPHAN_GRACE_MINUTES: an upload writes its spool file,
and the pipeline its stored file, before the row naming it commits. Only files under a directory
named like a session id are judged: nothing else in the store's root was written by Lucid. Rows
whose file is gone are marked `failed` and reported, never deleted: a restore needs them.
"""

import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import groupby
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError

from chunks_app.models import Chunk
from chunks_app.selectors import storage_usage_changed
from chunks_app.spool import SessionStream, get_spool, session_stream
from chunks_app.storage import (
    ChunkNotFoundError,
    ChunkStore,
    ChunkStoreError,
    StoredEntry,
    get_chunk_store,
)
from core.choices import ChunkStatus
from core.db import atomic_retried
from core.progress import ProgressFactory
from sessions_app import tallies
from sessions_app.choices import IngestMode, SessionStatus
from sessions_app.models import Session
from sessions_app.tallies import tally_apply

logger = logging.getLogger(__name__)

STORE = "store"
SPOOL = "spool"
MISSING = "file missing: "
NO_ROW = "no chunk row names it"
RECORDING_STATUSES = (SessionStatus.RECORDING, SessionStatus.PAUSED)
CHUNK_FIELDS = ("id", "session_id", "sequence", "size", "status", "storage_key", "spool_key")

Item = TypeVar("Item")


@dataclass(frozen=True)
class OrphanFile:
    """A file in the chunk store or the spool that no chunk row needs."""

    area: str
    key: str
    size: int
    reason: str


@dataclass(frozen=True)
class Leftover:
    """The temporary file of a write that never finished."""

    area: str
    name: str


@dataclass(frozen=True)
class LostChunk:
    """A chunk row whose file is gone; `status` is the one it had when found."""

    chunk_id: uuid.UUID
    session_id: uuid.UUID
    sequence: int
    status: str
    area: str
    key: str

    @property
    def error(self) -> str:
        if self.area == STORE:
            return f"stored {MISSING}{self.key}; restore from a backup"
        return f"spooled {MISSING}{self.key}; upload the chunk again or restore from a backup"


@dataclass
class OrphanReport:
    """Orphans found (by `orphans_find`) or dealt with (by `orphans_clean`)."""

    older_than: float
    files: list[OrphanFile] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)
    lost_chunks: list[LostChunk] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def tracked(items: list[Item], label: str, progress: ProgressFactory | None) -> Iterator[Item]:
    """Yield `items`, advancing the progress display `progress` gives for them, if any."""
    display = progress(label, len(items)) if progress and items else None
    for item in items:
        yield item
        if display:
            display.advance()
    if display:
        display.finish()


@contextmanager
def errors_recorded(errors: list[str], action: str) -> Iterator[None]:
    """Record a storage or database failure of one item in `errors` and go on with the next."""
    try:
        yield
    except (ChunkStoreError, DatabaseError) as error:
        logger.warning("cleanup could not %s: %s", action, error)
        errors.append(f"could not {action}: {error}")


def _stores() -> dict[str, ChunkStore]:
    return {STORE: get_chunk_store(), SPOOL: get_spool()}


def _directory_of(key: str) -> str:
    directory, slash, _ = key.partition("/")
    return directory if slash else ""


def _session_id(directory: str) -> uuid.UUID | None:
    """The session id a directory is named by; None for anything Lucid did not write."""
    try:
        session_id = uuid.UUID(directory)
    except ValueError:
        return None
    return session_id if str(session_id) == directory else None


def _file_of(chunk: Chunk) -> tuple[str, str]:
    """Where the chunk's bytes must be: the store once it got there, the spool before."""
    if chunk.storage_key:
        return STORE, chunk.storage_key
    return SPOOL, chunk.spool_key


def _open_stream_tail(session: Session | None) -> tuple[SessionStream, int] | None:
    """The stream of a recording session and its offset: the segment it is still filling."""
    if (
        session is None
        or session.status not in RECORDING_STATUSES
        or session.ingest_mode != IngestMode.STREAM
    ):
        return None
    stream = session_stream(session_id=session.pk, chunk_size=session.chunk_size)
    return stream, session.stream_offset


def _orphan_reason(
    *,
    area: str,
    key: str,
    chunk: Chunk | None,
    tail: tuple[SessionStream, int] | None,
    chunk_store: ChunkStore,
) -> str | None:
    """Why the file `key` in `area` can go, given the row naming it and the open stream tail."""
    if tail is not None and tail[0].holds(key, offset=tail[1]):
        return None
    if chunk is None:
        return NO_ROW
    if area == STORE or chunk.status != ChunkStatus.STORED:
        return None
    if chunk_store.exists(chunk.storage_key):
        return f"chunk {chunk.sequence} is already stored as {chunk.storage_key}"
    return None


def _session_for_tail(session_id: uuid.UUID) -> Session | None:
    fields = ("status", "ingest_mode", "stream_offset", "chunk_size")
    return Session.objects.filter(pk=session_id).only(*fields).first()


def _orphans_in(
    *,
    stores: dict[str, ChunkStore],
    area: str,
    session_id: uuid.UUID,
    entries: Iterable[StoredEntry],
    older_than: float,
) -> Iterator[OrphanFile]:
    """The orphans among `entries`, the files of one session's directory in `area`."""
    key_field = "storage_key" if area == STORE else "spool_key"
    chunks = Chunk.objects.filter(session_id=session_id).only(*CHUNK_FIELDS)
    named = {getattr(chunk, key_field): chunk for chunk in chunks}
    tail = _open_stream_tail(_session_for_tail(session_id)) if area == SPOOL else None
    for entry in entries:
        if entry.modified_at >= older_than:
            continue
        key = entry.key
        reason = _orphan_reason(
            area=area, key=key, chunk=named.get(key), tail=tail, chunk_store=stores[STORE]
        )
        if reason:
            yield OrphanFile(area=area, key=key, size=entry.size, reason=reason)


def _orphan_reason_now(orphan: OrphanFile, stores: dict[str, ChunkStore]) -> str | None:
    """Judge one file again against the rows as they are now."""
    session_id = _session_id(_directory_of(orphan.key))
    if session_id is None:
        return None
    key_field = "storage_key" if orphan.area == STORE else "spool_key"
    chunk = Chunk.objects.filter(session_id=session_id, **{key_field: orphan.key}).first()
    tail = _open_stream_tail(_session_for_tail(session_id)) if orphan.area == SPOOL else None
    return _orphan_reason(
        area=orphan.area, key=orphan.key, chunk=chunk, tail=tail, chunk_store=stores[STORE]
    )


def _modified_before(store: ChunkStore, key: str, older_than: float) -> bool:
    try:
        return store.modified_at(key) < older_than
    except ChunkNotFoundError:
        return False


def _lost(chunk: Chunk, stores: dict[str, ChunkStore]) -> LostChunk | None:
    area, key = _file_of(chunk)
    if stores[area].exists(key):
        return None
    return LostChunk(
        chunk_id=chunk.pk,
        session_id=chunk.session_id,
        sequence=chunk.sequence,
        status=chunk.status,
        area=area,
        key=key,
    )


def _not_yet_reported(chunk: Chunk | None) -> bool:
    """Whether the chunk is neither `damaged` nor `failed` for a missing file already."""
    if chunk is None or chunk.status == ChunkStatus.DAMAGED:
        return False
    return not (chunk.status == ChunkStatus.FAILED and MISSING in chunk.error)


def _lost_chunks(stores: dict[str, ChunkStore], listed: dict[str, set[str]]) -> Iterator[LostChunk]:
    """Rows whose file is gone, each checked again against its row as it is now.

    A row whose file was in the listing is not looked up again (on an object store that is a
    request per chunk); one whose file was not is looked for, since it may be newer than the
    listing. A chunk stored (or a session deleted) between reading the row and looking for its
    file would otherwise look lost.
    """
    candidates = Chunk.objects.exclude(status=ChunkStatus.FAILED, error__contains=MISSING)
    candidates = candidates.exclude(status=ChunkStatus.DAMAGED).only(*CHUNK_FIELDS)
    for chunk in candidates.order_by().iterator(chunk_size=2000):
        area, key = _file_of(chunk)
        if key in listed[area] or _lost(chunk, stores) is None:
            continue
        current = Chunk.objects.filter(pk=chunk.pk).only(*CHUNK_FIELDS, "error").first()
        if _not_yet_reported(current) and (lost := _lost(current, stores)):
            yield lost


def orphans_find(*, now: datetime) -> OrphanReport:
    """What orphan cleanup would do now; changes nothing.

    Each store is listed once, keys with their sizes and times (`ChunkStore.entries`)."""
    older_than = now.timestamp() - settings.LUCID_ORPHAN_GRACE_MINUTES * 60
    report = OrphanReport(older_than=older_than)
    stores = _stores()
    listed: dict[str, set[str]] = {}
    for area, store in stores.items():
        listed[area] = set()
        entries = _listed_into(listed[area], store.entries())
        for directory, found in groupby(entries, key=lambda entry: _directory_of(entry.key)):
            session_id = _session_id(directory)
            if session_id is not None:
                report.files.extend(
                    _orphans_in(
                        stores=stores,
                        area=area,
                        session_id=session_id,
                        entries=found,
                        older_than=older_than,
                    )
                )
        report.leftovers.extend(
            Leftover(area=area, name=name) for name in store.leftovers(older_than=older_than)
        )
    report.lost_chunks.extend(_lost_chunks(stores, listed))
    return report


def _listed_into(keys: set[str], entries: Iterable[StoredEntry]) -> Iterator[StoredEntry]:
    for entry in entries:
        keys.add(entry.key)
        yield entry


def chunk_mark_lost(*, lost: LostChunk) -> LostChunk | None:
    """Mark the chunk `failed` because its file is gone, unless that is no longer so.

    A chunk already `failed` keeps its status and gets the missing file added to its error.
    Returns the chunk as marked, or None when there was nothing to mark.
    """
    stores = _stores()

    def mark() -> LostChunk | None:
        chunk = Chunk.objects.select_for_update().filter(pk=lost.chunk_id).first()
        if not _not_yet_reported(chunk):
            return None
        current = _lost(chunk, stores)
        if current is None:
            return None
        if chunk.status == ChunkStatus.FAILED:
            error = f"{current.error}; earlier: {chunk.error}" if chunk.error else current.error
            Chunk.objects.filter(pk=chunk.pk).update(error=error)
        else:
            Chunk.objects.filter(pk=chunk.pk).update(status=ChunkStatus.FAILED, error=current.error)
            tally = tallies.chunk_failed(source=chunk.status, size=chunk.size)
            tally_apply(session_id=chunk.session_id, tally=tally)
        return current

    current = atomic_retried(mark)
    if current is None:
        return None
    logger.warning(
        "chunk %s#%s marked failed: %s",
        current.session_id,
        current.sequence,
        current.error,
        extra={"session_id": str(current.session_id), "sequence": current.sequence},
    )
    return current


def orphans_clean(
    *, report: OrphanReport, dry_run: bool, progress: ProgressFactory | None = None
) -> OrphanReport:
    """Remove the orphan files and leftovers and mark the lost chunks, each checked again first.

    Returns what was done, or with `dry_run` (which changes nothing) what would be done.
    """
    if dry_run:
        return replace(report)
    stores = _stores()
    done = OrphanReport(older_than=report.older_than, errors=list(report.errors))
    for orphan in tracked(report.files, "removing orphan files", progress):
        with errors_recorded(done.errors, f"remove {orphan.area} file {orphan.key}"):
            store = stores[orphan.area]
            still_orphan = _orphan_reason_now(orphan, stores) is not None
            if still_orphan and _modified_before(store, orphan.key, report.older_than):
                store.delete(orphan.key)
                done.files.append(orphan)
                logger.info("orphan %s file %s removed: %s", orphan.area, orphan.key, orphan.reason)
    for leftover in tracked(report.leftovers, "removing leftovers", progress):
        with errors_recorded(done.errors, f"remove {leftover.area} leftover {leftover.name}"):
            stores[leftover.area].remove_leftover(leftover.name)
            done.leftovers.append(leftover)
    for lost in tracked(report.lost_chunks, "marking lost chunks", progress):
        with errors_recorded(done.errors, f"mark chunk {lost.session_id}#{lost.sequence}"):
            if marked := chunk_mark_lost(lost=lost):
                done.lost_chunks.append(marked)
    if done.files or done.leftovers:
        storage_usage_changed()
    return done
