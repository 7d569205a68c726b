"""Statistics of one session and of the whole system, read from running totals.

Both cost a handful of rows however many chunks exist. The system figures are cached until the
next change (or LUCID_STATISTICS_CACHE_SECONDS, whichever comes first).
"""

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from chunks_app.selectors import storage_usage
from core.choices import ChunkStatus
from core.counters import counters_read
from sessions_app.choices import SessionStatus
from sessions_app.models import Session
from sessions_app.tallies import SYSTEM_TOTALS_CACHE_KEY


def _ratio(compressed_size: int, size: int) -> float | None:
    return compressed_size / size if size else None


def session_statistics(*, session: Session) -> dict:
    duration = None
    if session.started_at:
        duration = ((session.stopped_at or timezone.now()) - session.started_at).total_seconds()
    average = None
    if session.chunks_stored:
        average = session.processing_us / session.chunks_stored / 1000
    return {
        "chunk_count": session.chunk_count,
        "size": session.size,
        "compressed_size": session.compressed_size,
        "compression_ratio": _ratio(session.compressed_size, session.size),
        "chunks_by_status": {s: getattr(session, f"chunks_{s}") for s in ChunkStatus.values},
        "duration_seconds": duration,
        "average_processing_ms": average,
    }


def _system_totals() -> dict:
    counters = counters_read()
    sessions = {s: counters.get(f"sessions.{s}", 0) for s in SessionStatus.values}
    chunks = {s: counters.get(f"chunks.{s}", 0) for s in ChunkStatus.values}
    size = counters.get("chunks.raw_bytes", 0)
    compressed_size = counters.get("chunks.stored_bytes", 0)
    return {
        "session_count": sum(sessions.values()),
        "sessions_by_status": sessions,
        "chunk_count": sum(chunks.values()),
        "chunks_by_status": chunks,
        "size": size,
        "compressed_size": compressed_size,
        "compression_ratio": _ratio(compressed_size, size),
        "backlog_bytes": counters.get("chunks.backlog_bytes", 0),
    }


def system_statistics() -> dict:
    totals = cache.get(SYSTEM_TOTALS_CACHE_KEY)
    if totals is None:
        totals = _system_totals()
        cache.set(SYSTEM_TOTALS_CACHE_KEY, totals, timeout=settings.LUCID_STATISTICS_CACHE_SECONDS)
    usage = storage_usage()
    storage = {"path": usage.path, "used_bytes": usage.used_bytes, "free_bytes": usage.free_bytes}
    return {**totals, "storage": storage}
