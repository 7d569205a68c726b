"""The operator console's list of recording sessions: its columns, search and filters.

The session admin itself is `lucid.admin.SessionAdmin`, since a session's page gathers every
layer; it takes its list from `SessionListAdmin`. The columns fit a 1,366 px wide screen.
"""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

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
        "account",
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

    class Media:
        css = {"all": ["sessions_app/session_list.css"]}

    @admin.display(description="started", ordering="started_at")
    def started(self, session: Session) -> str:
        """The date over the time, to leave the other columns room."""
        if session.started_at is None:
            return "-"
        started = timezone.localtime(session.started_at)
        return format_html("{}<br>{}", started.strftime("%Y-%m-%d"), started.strftime("%H:%M"))

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

    @admin.display(description="remote user", ordering="remote_user")
    def account(self, session: Session) -> str:
        """The account on the recorded host, wrapped after its domain (`CORP\\` `alice`) if at
        all."""
        domain, backslash, user = session.remote_user.rpartition("\\")
        if not backslash:
            return session.remote_user or "-"
        return format_html("{}\\<wbr>{}", domain, user)

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
