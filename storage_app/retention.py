"""Retention: which sessions go (by age, count, disk watermark) or stop (stale recordings).

`retention_plan` only reads; `retention_apply` carries a plan out through the session services.
`lucid_cleanup` runs retention, then orphan cleanup, for the `cleanup` command and the periodic
task. Sessions under legal hold, and sessions not yet stopped, are never removed.
"""

import logging
import shutil
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from django.conf import settings
from django.db.models.functions import Coalesce
from django.utils import timezone

from chunks_app.models import Chunk
from chunks_app.selectors import storage_usage, storage_usage_changed, storage_used_counted
from chunks_app.services import session_stop
from chunks_app.storage import get_chunk_store
from core.audit import audit_record
from core.choices import AuditAction
from core.counters import counters_add
from core.db import atomic_retried, lock_rows
from core.errors import InvalidTransition
from core.progress import ProgressFactory
from core.sizes import MIB
from sessions_app.choices import SessionStatus
from sessions_app.models import Session
from sessions_app.services import session_delete
from storage_app.cleanup import (
    OrphanReport,
    errors_recorded,
    orphans_clean,
    orphans_find,
    tracked,
)

logger = logging.getLogger(__name__)

# Sessions retention removed, by policy: `lucid_retention_removed_sessions_total{policy}`.
REMOVED_COUNTER = "retention.removed_sessions"
STOPPED_STATUSES = (SessionStatus.STOPPED, SessionStatus.FAILED)
RECORDING_STATUSES = (SessionStatus.RECORDING, SessionStatus.PAUSED)
SESSION_FIELDS = (
    "id",
    "name",
    "status",
    "legal_hold",
    "retention_days",
    "created_at",
    "stopped_at",
    "compressed_size",
)


class RetentionPolicy(StrEnum):
    AGE = "age"
    COUNT = "count"
    WATERMARK = "watermark"
    STALE = "stale"


@dataclass(frozen=True)
class RetentionCandidate:
    """A session a policy picked, and why."""

    session_id: uuid.UUID
    name: str
    policy: RetentionPolicy
    reason: str
    compressed_size: int


@dataclass(frozen=True)
class DiskUsage:
    used_bytes: int
    total_bytes: int

    @property
    def percent(self) -> float:
        return 100 * self.used_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class RetentionPlan:
    """Sessions to remove, policy by policy, and recordings to stop; `usage` None if unknown."""

    now: datetime
    removals: list[RetentionCandidate]
    stops: list[RetentionCandidate]
    usage: DiskUsage | None
    projected_usage: DiskUsage | None

    def picked_by(self, policy: RetentionPolicy) -> list[RetentionCandidate]:
        return [c for c in [*self.removals, *self.stops] if c.policy == policy]


@dataclass
class RetentionReport:
    """What retention did, or with `dry_run` would do; `skipped` changed since the plan."""

    dry_run: bool
    removed: list[RetentionCandidate] = field(default_factory=list)
    stopped: list[RetentionCandidate] = field(default_factory=list)
    skipped: list[tuple[RetentionCandidate, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def removed_bytes(self) -> int:
        return sum(candidate.compressed_size for candidate in self.removed)


@dataclass(frozen=True)
class CleanupReport:
    dry_run: bool
    retention: RetentionReport
    orphans: OrphanReport

    @property
    def errors(self) -> list[str]:
        return [*self.retention.errors, *self.orphans.errors]

    def summary(self) -> str:
        sessions = len(self.retention.removed)
        mib = self.retention.removed_bytes / MIB
        stops = len(self.retention.stopped)
        files, leftovers = len(self.orphans.files), len(self.orphans.leftovers)
        rows = len(self.orphans.lost_chunks)
        if self.dry_run:
            return (
                f"cleanup: would remove {sessions} sessions ({mib:.1f} MiB), stop {stops} stale "
                f"recordings, {files} orphan files, {leftovers} leftovers; "
                f"mark {rows} rows failed"
            )
        return (
            f"cleanup: removed {sessions} sessions ({mib:.1f} MiB), stopped {stops} stale "
            f"recordings, {files} orphan files, {leftovers} leftovers; marked {rows} rows failed"
        )


def _ended_at(session: Session) -> datetime:
    return session.stopped_at or session.created_at


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _candidate(session: Session, policy: RetentionPolicy, reason: str) -> RetentionCandidate:
    return RetentionCandidate(
        session_id=session.pk,
        name=session.name,
        policy=policy,
        reason=reason,
        compressed_size=session.compressed_size,
    )


def _by_age(*, sessions: list[Session], now: datetime) -> list[RetentionCandidate]:
    picked = []
    for session in sessions:
        own = session.retention_days is not None
        days = session.retention_days if own else settings.LUCID_RETENTION_DAYS
        if session.legal_hold or _ended_at(session) + timedelta(days=days) > now:
            continue
        event = "stopped" if session.stopped_at else "created"
        source = "its retention_days" if own else "LUCID_RETENTION_DAYS"
        reason = f"{event} {_when(_ended_at(session))}, kept {days} days ({source})"
        picked.append(_candidate(session, RetentionPolicy.AGE, reason))
    return picked


def _by_count(
    *, sessions: list[Session], picked: list[RetentionCandidate]
) -> list[RetentionCandidate]:
    limit = settings.LUCID_MAX_SESSIONS
    gone = {candidate.session_id for candidate in picked}
    kept = [session for session in sessions if session.pk not in gone]
    excess = len(kept) - limit
    reason = f"{len(kept)} stopped sessions, at most {limit} kept (LUCID_MAX_SESSIONS)"
    removable = [session for session in kept if not session.legal_hold]
    return [_candidate(s, RetentionPolicy.COUNT, reason) for s in removable[: max(excess, 0)]]


def chunk_store_usage(*, cached: bool = False) -> DiskUsage | None:
    """The chunk store's usage the watermark is compared with: of LUCID_STORAGE_QUOTA_BYTES if
    set, else of its filesystem.

    An object store's used bytes are those the rows count; a filesystem's are walked, or with
    `cached` taken from the last walk (`storage_usage`)."""
    store = get_chunk_store()
    if settings.LUCID_STORAGE_QUOTA_BYTES > 0:
        if cached:
            used = storage_usage().used_bytes
        else:
            used = storage_used_counted() if store.usage_from_database else store.used_bytes()
        return DiskUsage(used_bytes=used, total_bytes=settings.LUCID_STORAGE_QUOTA_BYTES)
    location = Path(store.location)
    while not location.exists() and location.parent != location:
        location = location.parent
    try:
        disk = shutil.disk_usage(location)
    except OSError as error:
        logger.warning("disk usage of %s is unknown, watermark not applied: %s", location, error)
        return None
    return DiskUsage(used_bytes=disk.used, total_bytes=disk.total)


def _by_watermark(
    *, sessions: list[Session], picked: list[RetentionCandidate], usage: DiskUsage
) -> tuple[list[RetentionCandidate], DiskUsage]:
    """The oldest sessions whose stored bytes bring the store to the watermark or below.

    Sessions holding no stored bytes are passed over: removing them would free nothing.
    """
    watermark = settings.LUCID_DISK_HIGH_WATERMARK
    freed = sum(candidate.compressed_size for candidate in picked)
    projected = replace(usage, used_bytes=max(usage.used_bytes - freed, 0))
    gone = {candidate.session_id for candidate in picked}
    chosen = []
    for session in sessions:
        if projected.percent <= watermark:
            break
        if session.legal_hold or session.pk in gone or not session.compressed_size:
            continue
        before = projected.percent
        used_bytes = max(projected.used_bytes - session.compressed_size, 0)
        projected = replace(projected, used_bytes=used_bytes)
        reason = (
            f"chunk store {before:.1f}% used, above the {watermark}% watermark; "
            f"{projected.percent:.1f}% without this session"
        )
        chosen.append(_candidate(session, RetentionPolicy.WATERMARK, reason))
    return chosen, projected


def _stale(*, now: datetime) -> list[RetentionCandidate]:
    hours = settings.LUCID_STALE_SESSION_HOURS
    sessions = (
        Session.objects.filter(status__in=RECORDING_STATUSES)
        .annotate(last_activity=Coalesce("last_data_at", "started_at", "created_at"))
        .filter(last_activity__lt=now - timedelta(hours=hours))
        .order_by("last_activity", "pk")
    )
    return [
        _candidate(
            session,
            RetentionPolicy.STALE,
            f"{session.status} with no data since {_when(session.last_activity)}, "
            f"more than {hours} h (LUCID_STALE_SESSION_HOURS)",
        )
        for session in sessions
    ]


def retention_plan(*, now: datetime) -> RetentionPlan:
    """Which sessions each policy removes or stops at `now`, oldest first; changes nothing."""
    sessions = sorted(
        Session.objects.filter(status__in=STOPPED_STATUSES).only(*SESSION_FIELDS),
        key=lambda session: (_ended_at(session), str(session.pk)),
    )
    removals = _by_age(sessions=sessions, now=now)
    removals += _by_count(sessions=sessions, picked=removals)
    usage = chunk_store_usage()
    projected = None
    if usage is not None:
        by_watermark, projected = _by_watermark(sessions=sessions, picked=removals, usage=usage)
        removals += by_watermark
    return RetentionPlan(
        now=now,
        removals=removals,
        stops=_stale(now=now),
        usage=usage,
        projected_usage=projected,
    )


def _session_remove(*, candidate: RetentionCandidate) -> str | None:
    """Delete the picked session unless it changed since; returns why it was kept, if it was."""

    def remove() -> str | None:
        chunks = Chunk.objects.filter(session_id=candidate.session_id).order_by("sequence")
        chunks = chunks.select_for_update(of=("self",))
        list(chunks.values_list("pk"))
        rows = Session.objects.filter(pk=candidate.session_id)
        session = lock_rows(rows, updated_at=timezone.now()).first()
        if session is None:
            return "already gone"
        if session.legal_hold:
            return "under legal hold"
        if session.status not in STOPPED_STATUSES:
            return f"now '{session.status}'"
        audit_record(
            action=AuditAction.RETENTION_DELETED,
            session_id=session.pk,
            detail={"name": session.name, "policy": candidate.policy, "reason": candidate.reason},
        )
        session_delete(session=session)
        counters_add({f"{REMOVED_COUNTER}.{candidate.policy}": 1})
        return None

    kept = atomic_retried(remove)
    if kept:
        return kept
    logger.info(
        "session %s removed by retention (%s: %s)",
        candidate.session_id,
        candidate.policy,
        candidate.reason,
        extra={"session_id": str(candidate.session_id)},
    )
    return None


def _session_stop_stale(*, candidate: RetentionCandidate, since: datetime) -> str | None:
    """Stop the picked recording unless data came since; returns why it was kept, if it was."""
    session = Session.objects.filter(pk=candidate.session_id).first()
    if session is None:
        return "already gone"
    if session.status not in RECORDING_STATUSES:
        return f"now '{session.status}'"
    if (session.last_data_at or session.started_at or session.created_at) >= since:
        return "data arrived since the plan"
    try:
        session_stop(session=session)
    except InvalidTransition as error:
        return f"now '{error.extra['status']}'"
    logger.info(
        "session %s stopped: %s",
        candidate.session_id,
        candidate.reason,
        extra={"session_id": str(candidate.session_id)},
    )
    return None


def retention_apply(
    *, plan: RetentionPlan, dry_run: bool, progress: ProgressFactory | None = None
) -> RetentionReport:
    """Remove and stop the planned sessions, each checked again first; `dry_run` changes nothing."""
    report = RetentionReport(dry_run=dry_run)
    if dry_run:
        report.removed, report.stopped = list(plan.removals), list(plan.stops)
        return report
    for candidate in tracked(plan.removals, "removing sessions", progress):
        with errors_recorded(report.errors, f"remove session {candidate.session_id}"):
            if why := _session_remove(candidate=candidate):
                report.skipped.append((candidate, why))
            else:
                report.removed.append(candidate)
    since = plan.now - timedelta(hours=settings.LUCID_STALE_SESSION_HOURS)
    for candidate in tracked(plan.stops, "stopping stale recordings", progress):
        with errors_recorded(report.errors, f"stop session {candidate.session_id}"):
            if why := _session_stop_stale(candidate=candidate, since=since):
                report.skipped.append((candidate, why))
            else:
                report.stopped.append(candidate)
    if report.removed:
        storage_usage_changed()
    return report


def lucid_cleanup(
    *, now: datetime, dry_run: bool, progress: ProgressFactory | None = None
) -> CleanupReport:
    """Retention, then orphan cleanup; with `dry_run` only what they would do."""
    retention = retention_apply(plan=retention_plan(now=now), dry_run=dry_run, progress=progress)
    orphans = orphans_clean(report=orphans_find(now=now), dry_run=dry_run, progress=progress)
    return CleanupReport(dry_run=dry_run, retention=retention, orphans=orphans)
