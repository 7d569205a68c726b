"""The running totals an event changes: on its session's row and system-wide.

Each event gives a `Tally`; `tally_apply` adds it inside the caller's transaction, so totals
always equal a recount of the rows they count.
"""

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from core.choices import ChunkStatus
from core.counters import column_plus, counters_add
from core.db import on_commit
from sessions_app.models import Session

SYSTEM_TOTALS_CACHE_KEY = "lucid:statistics:system"
DAMAGED_TOTAL = "chunks.damaged_total"
PROCESSING_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
_SESSION_FIELDS = {field.name: field for field in Session._meta.concrete_fields}


@dataclass
class Tally:
    session: dict[str, int] = field(default_factory=dict)
    system: dict[str, int] = field(default_factory=dict)


def bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def chunks_received(*, count: int, size: int) -> Tally:
    return Tally(
        session={
            "chunk_count": count,
            "size": size,
            "chunks_received": count,
            "backlog_bytes": size,
        },
        system={
            "chunks.received": count,
            "chunks.raw_bytes": size,
            "chunks.backlog_bytes": size,
            "ingest.bytes_total": size,
            f"ingest.hourly.{timezone.now():%Y%m%d%H}": size,
        },
    )


def chunk_claimed() -> Tally:
    return Tally(
        session={"chunks_received": -1, "chunks_processing": 1},
        system={"chunks.received": -1, "chunks.processing": 1},
    )


def chunk_stored(*, size: int, stored_size: int, algorithm: str, seconds: float) -> Tally:
    system = {
        "chunks.processing": -1,
        "chunks.stored": 1,
        "chunks.backlog_bytes": -size,
        "chunks.stored_bytes": stored_size,
        f"store.bytes_total.{algorithm}": stored_size,
        f"store.raw_bytes_total.{algorithm}": size,
        f"processing.count.{algorithm}": 1,
        f"processing.sum_us.{algorithm}": round(seconds * 1_000_000),
    }
    for bound in PROCESSING_BUCKETS:
        if seconds <= bound:
            system[f"processing.bucket.{algorithm}.{bucket_label(bound)}"] = 1
    return Tally(
        session={
            "chunks_processing": -1,
            "chunks_stored": 1,
            "backlog_bytes": -size,
            "compressed_size": stored_size,
            "processing_us": round(seconds * 1_000_000),
        },
        system=system,
    )


def _chunk_moved(*, source: str, target: str, size: int) -> Tally:
    """A chunk leaves `source` for `target`; one that was waiting leaves the backlog."""
    backlog = size if source in (ChunkStatus.RECEIVED, ChunkStatus.PROCESSING) else 0
    return Tally(
        session={f"chunks_{source}": -1, f"chunks_{target}": 1, "backlog_bytes": -backlog},
        system={f"chunks.{source}": -1, f"chunks.{target}": 1, "chunks.backlog_bytes": -backlog},
    )


def chunk_failed(*, source: str, size: int) -> Tally:
    """A chunk becomes `failed`: processing gave up, or its file is gone (cleanup)."""
    return _chunk_moved(source=source, target=ChunkStatus.FAILED, size=size)


def chunk_waiting_again(*, source: str, size: int) -> Tally:
    """A chunk waits as `received` again: put back after a transient failure, or retried."""
    if source == ChunkStatus.RECEIVED:
        return Tally()
    backlog = 0 if source == ChunkStatus.PROCESSING else size
    return Tally(
        session={f"chunks_{source}": -1, "chunks_received": 1, "backlog_bytes": backlog},
        system={f"chunks.{source}": -1, "chunks.received": 1, "chunks.backlog_bytes": backlog},
    )


def chunk_damaged(*, source: str, size: int) -> Tally:
    """A chunk becomes `damaged`; DAMAGED_TOTAL, which never goes down, counts it too."""
    tally = _chunk_moved(source=source, target=ChunkStatus.DAMAGED, size=size)
    tally.system[DAMAGED_TOTAL] = 1
    return tally


def chunk_repaired(*, source: str, size: int, stored_size_change: int) -> Tally:
    """A chunk's file is written again from a backup, possibly in another codec: it is `stored`."""
    moved = source != ChunkStatus.STORED
    tally = _chunk_moved(source=source, target=ChunkStatus.STORED, size=size) if moved else Tally()
    if stored_size_change:
        tally.session["compressed_size"] = stored_size_change
        tally.system["chunks.stored_bytes"] = stored_size_change
    return tally


def session_created(*, status: str) -> Tally:
    return Tally(system={f"sessions.{status}": 1})


def session_moved(*, source: str, target: str) -> Tally:
    return Tally(system={f"sessions.{source}": -1, f"sessions.{target}": 1})


def session_removed(*, session: Session) -> Tally:
    """What a session with all its chunks took from the system totals."""
    system = {f"chunks.{status}": -getattr(session, f"chunks_{status}") for status in ChunkStatus}
    system.update(
        {
            f"sessions.{session.status}": -1,
            "chunks.raw_bytes": -session.size,
            "chunks.stored_bytes": -session.compressed_size,
            "chunks.backlog_bytes": -session.backlog_bytes,
        }
    )
    return Tally(system=system)


def session_restored(*, session: Session) -> Tally:
    """What a session restored from a backup, with its chunks, adds to the system totals.

    The session's own row is written whole by the restore; only the system totals follow.
    """
    removed = session_removed(session=session)
    return Tally(system={key: -delta for key, delta in removed.system.items()})


def tally_merge(*tallies: Tally) -> Tally:
    """One tally with the changes of all `tallies`, to apply at once; those that cancel out go."""
    return Tally(
        session=_deltas_sum(tally.session for tally in tallies),
        system=_deltas_sum(tally.system for tally in tallies),
    )


def _deltas_sum(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for deltas in parts:
        total.update(deltas)
    return {name: delta for name, delta in total.items() if delta}


def tally_apply(*, session_id: uuid.UUID | None, tally: Tally, only_if: Q | None = None) -> bool:
    """Add the tally in the caller's transaction; with `only_if`, only if the session matches.

    Returns False (and changes nothing) when the session does not match.
    """
    if tally.session:
        now = timezone.now()
        changes = {
            name: column_plus(field=_SESSION_FIELDS[name], amount=delta)
            for name, delta in tally.session.items()
        }
        if "chunk_count" in tally.session:
            changes["last_data_at"] = now
        conditions = () if only_if is None else (only_if,)
        if not Session.objects.filter(*conditions, pk=session_id).update(**changes, updated_at=now):
            return False
    if tally.system:
        counters_add(tally.system)
        system_totals_changed()
    return True


def system_totals_changed() -> None:
    """Drop the cached system totals once the current transaction commits."""
    on_commit(lambda: cache.delete(SYSTEM_TOTALS_CACHE_KEY))
