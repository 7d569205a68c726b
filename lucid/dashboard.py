"""The operator dashboard: storage, sessions by status, ingest per hour and compression by codec.

`dashboard_figures` reads what the page shows from the running totals and the chunk store (a
handful of queries however much is stored); the charts are small inline SVG drawn here, every
text escaped by `format_html`; `dashboard_view` renders them inside the admin. `index_figures`
are the few the admin index shows above its sections, from the same totals.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from chunks_app.statistics import system_statistics
from chunks_app.storage import ChunkStoreError
from core.choices import ChunkStatus, CompressionAlgorithm
from core.counters import counters_read
from core.units import ratio_text, size_text
from sessions_app.choices import SessionStatus
from storage_app.backup.create import LAST_SUCCESS_COUNTER
from storage_app.retention import DiskUsage, chunk_store_usage

HOURS_SHOWN = 24
CHART_WIDTH = 560


@dataclass(frozen=True)
class CodecFigures:
    codec: str
    raw_bytes: int
    stored_bytes: int

    @property
    def ratio(self) -> float:
        """Stored bytes per raw byte: 0.25 means a quarter of the raw size is kept."""
        return self.stored_bytes / self.raw_bytes


@dataclass(frozen=True)
class DashboardFigures:
    storage_path: str
    used_bytes: int
    free_bytes: int
    session_count: int
    sessions_by_status: dict[str, int]
    chunk_count: int
    damaged_chunks: int
    size: int
    compressed_size: int
    backlog_bytes: int
    ingest_by_hour: list[tuple[datetime, int]]
    codecs: list[CodecFigures]

    @property
    def used_share(self) -> float:
        total = self.used_bytes + self.free_bytes
        return self.used_bytes / total if total else 0.0

    @property
    def ingest_total(self) -> int:
        return sum(size for _, size in self.ingest_by_hour)


def dashboard_figures(*, now: datetime | None = None) -> DashboardFigures:
    """What the dashboard shows; ingest per UTC hour over the HOURS_SHOWN hours up to `now`."""
    statistics = system_statistics()
    latest = (now or timezone.now()).astimezone(UTC)
    latest = latest.replace(minute=0, second=0, microsecond=0)
    hours = [latest - timedelta(hours=back) for back in range(HOURS_SHOWN - 1, -1, -1)]
    hourly = counters_read([_hour_key(hour) for hour in hours])
    stored = counters_read(prefix="store.")
    codecs = [
        CodecFigures(
            codec=codec,
            raw_bytes=stored[f"store.raw_bytes_total.{codec}"],
            stored_bytes=stored.get(f"store.bytes_total.{codec}", 0),
        )
        for codec in CompressionAlgorithm.values
        if stored.get(f"store.raw_bytes_total.{codec}")
    ]
    return DashboardFigures(
        storage_path=statistics["storage"]["path"],
        used_bytes=statistics["storage"]["used_bytes"],
        free_bytes=statistics["storage"]["free_bytes"],
        session_count=statistics["session_count"],
        sessions_by_status=statistics["sessions_by_status"],
        chunk_count=statistics["chunk_count"],
        damaged_chunks=statistics["chunks_by_status"][ChunkStatus.DAMAGED],
        size=statistics["size"],
        compressed_size=statistics["compressed_size"],
        backlog_bytes=statistics["backlog_bytes"],
        ingest_by_hour=[(hour, hourly.get(_hour_key(hour), 0)) for hour in hours],
        codecs=codecs,
    )


@dataclass(frozen=True)
class IndexFigures:
    """What an operator checks first: activity, stored bytes, trouble, space and backups."""

    sessions_recording: int
    session_count: int
    size: int
    compressed_size: int
    backlog_bytes: int
    chunks_failed: int
    chunks_damaged: int
    storage: DiskUsage | None
    watermark_percent: int
    last_backup_at: datetime | None
    now: datetime

    @property
    def compression(self) -> str:
        return ratio_text(self.size, self.compressed_size)

    @property
    def backup_age(self) -> timedelta | None:
        return None if self.last_backup_at is None else self.now - self.last_backup_at

    @property
    def above_watermark(self) -> bool:
        return self.storage is not None and self.storage.percent > self.watermark_percent

    @property
    def backup_late(self) -> bool:
        """No full backup yet, or none within two scheduled intervals."""
        interval = timedelta(hours=settings.LUCID_BACKUP_INTERVAL_HOURS)
        return self.backup_age is None or self.backup_age > 2 * interval


def index_figures(*, now: datetime | None = None) -> IndexFigures:
    """The index's figures: the cached totals, the chunk store's cached usage, one counter."""
    statistics = system_statistics()
    try:
        storage = chunk_store_usage(cached=True)
    except ChunkStoreError:
        storage = None
    last_backup = counters_read([LAST_SUCCESS_COUNTER]).get(LAST_SUCCESS_COUNTER)
    return IndexFigures(
        sessions_recording=statistics["sessions_by_status"][SessionStatus.RECORDING],
        session_count=statistics["session_count"],
        size=statistics["size"],
        compressed_size=statistics["compressed_size"],
        backlog_bytes=statistics["backlog_bytes"],
        chunks_failed=statistics["chunks_by_status"][ChunkStatus.FAILED],
        chunks_damaged=statistics["chunks_by_status"][ChunkStatus.DAMAGED],
        storage=storage,
        watermark_percent=settings.LUCID_DISK_HIGH_WATERMARK,
        last_backup_at=datetime.fromtimestamp(last_backup, UTC) if last_backup else None,
        now=now or timezone.now(),
    )


def _hour_key(hour: datetime) -> str:
    return f"ingest.hourly.{hour:%Y%m%d%H}"


# --- charts -------------------------------------------------------------------------------------


def _svg(*, height: int, label: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" '
        'viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        CHART_WIDTH,
        height,
        CHART_WIDTH,
        height,
        label,
        body,
    )


def _number(value: float) -> str:
    return f"{value:.1f}"


def _share(value: float) -> str:
    return "< 0.1%" if 0 < value < 0.001 else f"{value:.1%}"


def storage_chart(figures: DashboardFigures) -> SafeString:
    """One bar: the chunk store's used bytes against its free bytes."""
    used_width = CHART_WIDTH * figures.used_share
    if figures.used_bytes:
        used_width = max(used_width, 3)
    used = size_text(figures.used_bytes)
    free = size_text(figures.free_bytes)
    body = format_html(
        '<rect class="free" x="0" y="0" width="{}" height="28"><title>free: {}</title></rect>'
        '<rect class="bar" x="0" y="0" width="{}" height="28"><title>used: {}</title></rect>'
        '<text x="0" y="48">used {} ({}) · free {}</text>',
        CHART_WIDTH,
        free,
        _number(used_width),
        used,
        used,
        _share(figures.used_share),
        free,
    )
    return _svg(height=56, label=f"Chunk store: {used} used, {free} free", body=body)


def rows_chart(
    rows: list[tuple[str, float, str]], *, label: str, full_scale: float | None = None
) -> SafeString:
    """Horizontal bars, one per (label, value, value as shown); scaled to the largest value."""
    label_width, value_width, row_height = 110, 200, 26
    bar_space = CHART_WIDTH - label_width - value_width
    largest = full_scale or max((value for _, value, _ in rows), default=0) or 1
    bars = []
    for index, (name, value, shown) in enumerate(rows):
        top = index * row_height
        width = bar_space * min(value / largest, 1)
        bars.append(
            (
                _number(top + 17),
                name,
                label_width,
                _number(top + 4),
                _number(width),
                name,
                shown,
                _number(label_width + width + 6),
                _number(top + 17),
                shown,
            )
        )
    body = format_html_join(
        "",
        '<text x="0" y="{}">{}</text>'
        '<rect class="bar" x="{}" y="{}" width="{}" height="18"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}">{}</text>',
        bars,
    )
    return _svg(height=max(len(rows), 1) * row_height, label=label, body=body)


def ingest_chart(figures: DashboardFigures) -> SafeString:
    """Columns: raw bytes received in each of the last hours, oldest left; labels every 3 h."""
    left, top, plot_height, bottom = 64, 8, 150, 24
    column_width = (CHART_WIDTH - left) / len(figures.ingest_by_hour)
    largest = max((size for _, size in figures.ingest_by_hour), default=0)
    columns, hour_labels = [], []
    for index, (hour, size) in enumerate(figures.ingest_by_hour):
        height = plot_height * size / largest if largest else 0
        x = left + index * column_width
        columns.append(
            (
                _number(x + 2),
                _number(top + plot_height - height),
                _number(column_width - 4),
                _number(height),
                f"{hour:%Y-%m-%d %H:00} UTC",
                size_text(size),
            )
        )
        if index % 3 == 0:
            hour_labels.append((_number(x), top + plot_height + 16, f"{hour:%H}:00"))
    body = format_html(
        '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text x="0" y="{}">{}</text><text x="0" y="{}">0</text>{}{}',
        left,
        top,
        CHART_WIDTH,
        top,
        left,
        top + plot_height,
        CHART_WIDTH,
        top + plot_height,
        top + 10,
        size_text(largest),
        top + plot_height,
        format_html_join(
            "",
            '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
            columns,
        ),
        format_html_join("", '<text x="{}" y="{}">{}</text>', hour_labels),
    )
    return _svg(
        height=top + plot_height + bottom,
        label=f"Ingest per hour over the last {HOURS_SHOWN} hours",
        body=body,
    )


def dashboard_charts(figures: DashboardFigures) -> dict[str, SafeString]:
    counts = [(status.label, figures.sessions_by_status.get(status, 0)) for status in SessionStatus]
    sessions = [(name, count, str(count)) for name, count in counts]
    codecs = [
        (
            codec.codec,
            codec.ratio,
            f"{ratio_text(codec.raw_bytes, codec.stored_bytes)} ({size_text(codec.stored_bytes)} "
            f"of {size_text(codec.raw_bytes)})",
        )
        for codec in figures.codecs
    ]
    return {
        "storage": storage_chart(figures),
        "sessions": rows_chart(sessions, label="Sessions by status"),
        "ingest": ingest_chart(figures),
        "codecs": rows_chart(codecs, label="Stored size by codec", full_scale=1.0),
    }


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """The dashboard page inside the admin (staff only: wrapped by `admin.site.admin_view`)."""
    figures = dashboard_figures()
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "figures": figures,
        "charts": dashboard_charts(figures),
    }
    return TemplateResponse(request, "admin/lucid/dashboard.html", context)
