"""GET /metrics: django-prometheus' series and ours, `lucid_*`, read from the running totals.

Our series come from the database, so every gunicorn and Celery process, on any machine, adds
to the same numbers. django-prometheus' per-process series are merged through
prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py
sets it).
"""

import os
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector

from core.choices import ChunkStatus, CompressionAlgorithm
from core.counters import counters_read
from sessions_app.choices import SessionStatus
from sessions_app.tallies import DAMAGED_TOTAL, PROCESSING_BUCKETS, bucket_label
from storage_app.backup.create import DAMAGED_COUNTER, LAST_SUCCESS_COUNTER


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
        yield self._processing_histogram(totals)

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


def _framework_registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def metrics_text() -> bytes:
    """The whole exposition: the framework's series, then ours."""
    lucid = CollectorRegistry()
    lucid.register(LucidCollector())
    return generate_latest(_framework_registry()) + generate_latest(lucid)


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
