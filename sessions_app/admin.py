"""The operator console's list of recording sessions: its columns, search and filters.

The session admin itself is `lucid.admin.SessionAdmin`, since a session's page gathers every
layer; it takes its list from `SessionListAdmin`. The columns fit a 1,366 px wide screen.
"""

from django.contrib import admin
from django.utils import timezone

from core.units import duration_text, ratio_text, size_text
from sessions_app.choices import SessionStatus
from sessions_app.models import Session

LIVE_STATUSES = (SessionStatus.RECORDING, SessionStatus.PAUSED)


class SessionListAdmin:
    """The list's columns in human units, its search and its filters."""

    list_display = [
        "name",
        "started",
        "recorded_duration",
        "remote_user",
        "host",
        "status",
        "size_display",
        "ratio",
        "complete_display",
    ]
    list_filter = [
        "status",
        "complete",
        ("started_at", admin.DateFieldListFilter),
        "legal_hold",
        "pipeline__state",
        "compression_algorithm",
        ("owner", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["name", "host", "remote_user", "client_address"]

    @admin.display(description="started", ordering="started_at")
    def started(self, session: Session) -> str:
        if session.started_at is None:
            return "-"
        return timezone.localtime(session.started_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="duration")
    def recorded_duration(self, session: Session) -> str:
        """The playing time when time marks give it, else the time from start to stop (or to now
        while the recording goes on)."""
        if session.duration_ms is not None:
            return duration_text(session.duration_ms / 1000)
        if session.started_at is None:
            return "-"
        if session.stopped_at is not None:
            return duration_text(session.stopped_at - session.started_at)
        if session.status in LIVE_STATUSES:
            return duration_text(timezone.now() - session.started_at)
        return "-"

    @admin.display(description="size", ordering="size")
    def size_display(self, session: Session) -> str:
        return size_text(session.size)

    @admin.display(description="ratio")
    def ratio(self, session: Session) -> str:
        return ratio_text(session.size, session.compressed_size)

    @admin.display(description="complete", boolean=True, ordering="complete")
    def complete_display(self, session: Session) -> bool | None:
        """Unknown until stopped; then whether no sequence is missing."""
        return session.complete if session.status == SessionStatus.STOPPED else None
