"""GET /metrics: django-prometheus' series and ours, `lucid_*`, read from the running totals.

Our series come from the database, so every gunicorn and Celery process, on any machine, adds
to the same numbers. django-prometheus' per-process series are merged through
prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py
sets it). The chunk store's figures are those of the statistics and the watermark, its walk
cached (LUCID_STORAGE_USAGE_CACHE_SECONDS).

`process_*` cover every process of the role, one series per `pid`: the gunicorn master and its
workers, a Celery worker and its pool's children, beat. prometheus_client reports only the
process that answers the scrape, and nothing at all in multiprocess mode. Its `python_gc_*`,
one process's collector, are left out.
"""

import logging
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector

from chunks_app.selectors import storage_usage
from chunks_app.storage import ChunkStoreError
from core.choices import ChunkStatus, CompressionAlgorithm
from core.counters import counters_read
from sessions_app.choices import SessionStatus
from sessions_app.tallies import DAMAGED_TOTAL, PROCESSING_BUCKETS, bucket_label
from storage_app.backup.create import DAMAGED_COUNTER, LAST_SUCCESS_COUNTER
from storage_app.retention import REMOVED_COUNTER, RetentionPolicy, chunk_store_usage

logger = logging.getLogger(__name__)
PROC = "/proc"


class LucidCollector:
    """The service's own series, from one read of the running totals."""

    def collect(self) -> Iterator[Metric]:
        totals = counters_read()
        yield CounterMetricFamily(
            "lucid_bytes_received",
            "Raw bytes acknowledged by ingest.",
            value=totals.get("ingest.bytes_total", 0),
        )
        stored = CounterMetricFamily(
            "lucid_bytes_stored", "Bytes written to the chunk store.", labels=["codec"]
        )
        for codec in CompressionAlgorithm.values:
            stored.add_metric([codec], totals.get(f"store.bytes_total.{codec}", 0))
        yield stored
        chunks = GaugeMetricFamily("lucid_chunks", "Chunks by status.", labels=["status"])
        for status in ChunkStatus.values:
            chunks.add_metric([status], totals.get(f"chunks.{status}", 0))
        yield chunks
        yield CounterMetricFamily(
            "lucid_chunks_damaged",
            "Chunks found damaged: kept bytes missing or not matching their recorded sha256.",
            value=totals.get(DAMAGED_TOTAL, 0),
        )
        sessions = GaugeMetricFamily("lucid_sessions", "Sessions by status.", labels=["status"])
        for status in SessionStatus.values:
            sessions.add_metric([status], totals.get(f"sessions.{status}", 0))
        yield sessions
        yield GaugeMetricFamily(
            "lucid_pipeline_backlog_bytes",
            "Raw bytes received and not yet stored.",
            value=totals.get("chunks.backlog_bytes", 0),
        )
        yield GaugeMetricFamily(
            "lucid_backup_last_success_timestamp_seconds",
            "When the last backup of all sessions completed (with or without damaged chunks).",
            value=totals.get(LAST_SUCCESS_COUNTER, 0),
        )
        yield GaugeMetricFamily(
            "lucid_backup_damaged_chunks",
            "Damaged chunks the last backup of all sessions left out and listed.",
            value=totals.get(DAMAGED_COUNTER, 0),
        )
        yield GaugeMetricFamily(
            "lucid_backup_interval_seconds",
            "How often the scheduled backup runs (LUCID_BACKUP_INTERVAL_HOURS).",
            value=settings.LUCID_BACKUP_INTERVAL_HOURS * 3600,
        )
        removed = CounterMetricFamily(
            "lucid_retention_removed_sessions",
            "Sessions retention removed, by the policy that picked them.",
            labels=["policy"],
        )
        for policy in (RetentionPolicy.AGE, RetentionPolicy.COUNT, RetentionPolicy.WATERMARK):
            removed.add_metric([policy], totals.get(f"{REMOVED_COUNTER}.{policy}", 0))
        yield removed
        yield self._processing_histogram(totals)
        yield from self._storage()

    @staticmethod
    def _storage() -> Iterator[Metric]:
        """The chunk store's space; nothing when it cannot be measured (the health check says
        why)."""
        try:
            usage = storage_usage()
            watermarked = chunk_store_usage(cached=True)
        except ChunkStoreError as error:
            logger.warning("metrics: the chunk store's usage is unknown: %s", error)
            return
        yield GaugeMetricFamily(
            "lucid_storage_used_bytes",
            "Bytes the chunk store holds (an object store: the bytes the rows count).",
            value=usage.used_bytes,
        )
        yield GaugeMetricFamily(
            "lucid_storage_free_bytes",
            "Bytes the chunk store can still take (an object store: the quota less the used).",
            value=usage.free_bytes,
        )
        yield GaugeMetricFamily(
            "lucid_storage_high_watermark_ratio",
            "Share of the chunk store's space above which retention removes the oldest stopped "
            "sessions (LUCID_DISK_HIGH_WATERMARK / 100).",
            value=settings.LUCID_DISK_HIGH_WATERMARK / 100,
        )
        if watermarked is not None:
            yield GaugeMetricFamily(
                "lucid_storage_used_ratio",
                "Share of the chunk store's space in use, as retention compares it with the "
                "watermark: of LUCID_STORAGE_QUOTA_BYTES if set, else of the filesystem.",
                value=watermarked.percent / 100,
            )

    @staticmethod
    def _processing_histogram(totals: dict[str, int]) -> HistogramMetricFamily:
        histogram = HistogramMetricFamily(
            "lucid_chunk_processing_seconds",
            "Time to compress, hash and store one chunk.",
            labels=["codec"],
        )
        for codec in CompressionAlgorithm.values:
            buckets = [
                (label, totals.get(f"processing.bucket.{codec}.{label}", 0))
                for label in map(bucket_label, PROCESSING_BUCKETS)
            ]
            seconds = totals.get(f"processing.sum_us.{codec}", 0) / 1_000_000
            histogram.add_metric([codec], buckets, sum_value=seconds)
        return histogram


class RoleProcessCollector:
    """`process_*` of each process of the role, labelled `pid`, and `python_info`."""

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in sorted(_role_processes()):
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {"pid": str(pid)}, sample.value)
        yield from families.values()
        yield from PlatformCollector(registry=None).collect()


def _role_root() -> int:
    """The role's first process: a gunicorn worker's master (multiprocess mode is gunicorn's,
    lucid/gunicorn.conf.py), else this process (a Celery worker's main process, beat)."""
    return os.getppid() if "PROMETHEUS_MULTIPROC_DIR" in os.environ else os.getpid()


def _role_processes() -> set[int]:
    """The role's first process and all its descendants, from /proc; none without /proc."""
    children: dict[int, list[int]] = {}
    try:
        entries = [entry.name for entry in os.scandir(PROC) if entry.name.isdigit()]
    except OSError:
        return set()
    for pid in entries:
        try:
            with open(f"{PROC}/{pid}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(pid))
    root = _role_root()
    found, pending = set(), [root] if str(root) in entries else []
    while pending:
        pid = pending.pop()
        found.add(pid)
        pending.extend(children.get(pid, []))
    return found


class _FrameworkSeries:
    """django-prometheus' series: merged across gunicorn's workers, else this process's own,
    without the per-process defaults that RoleProcessCollector replaces."""

    def collect(self) -> Iterator[Metric]:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            yield from MultiProcessCollector(None).collect()
            return
        for family in REGISTRY.collect():
            if not family.name.startswith(("process_", "python_")):
                yield family


def metrics_text() -> bytes:
    """The whole exposition: the framework's series, the role's processes, then ours."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in (_FrameworkSeries(), RoleProcessCollector(), LucidCollector()):
        registry.register(collector)
    return generate_latest(registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
