"""Recording sessions in the operator console: the list, actions through the services, the page.

It sits in the project package because a session's page gathers every layer: the session, its
chunks, its pipeline and their verification. Actions call the same services as the API, so they
check the same rules, keep the running totals and write the same audit entries (with the admin
user as actor).
"""

import json
from collections.abc import Callable, Iterable

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from chunks_app import services as chunk_services
from chunks_app.models import Chunk
from chunks_app.playlist import is_playable
from chunks_app.selectors import session_missing_sequences
from core.admin import (
    AuditHistoryMixin,
    ServiceTransactionsMixin,
    UUIDSearchMixin,
    audit_trail_url,
)
from core.choices import ChunkStatus, PipelineState
from core.errors import ApplicationError
from core.models import AuditEntry
from core.units import ratio_text, size_text
from pipeline_app import services as pipeline_services
from pipeline_app.selectors import pipeline_status
from sessions_app import services
from sessions_app.admin import SessionListAdmin
from sessions_app.choices import SessionStatus
from sessions_app.models import Session
from storage_app.backup.create import backup_newest
from storage_app.backup.repair import RepairResult, backup_repair
from storage_app.verify import Damage, chunks_verify

CHUNKS_SHOWN = 50
AUDIT_ENTRIES_SHOWN = 20
GAPS_SHOWN = 20
EDITABLE_FIELDS = ("name", "host", "retention_days", "legal_hold")
# Sessions whose recording may still grow: the player follows their playlist.
LIVE_STATUSES = (SessionStatus.CREATED, SessionStatus.RECORDING, SessionStatus.PAUSED)


def _damage_text(damage: Damage) -> str:
    if damage.sequence is None:
        return damage.problem
    return f"chunk {damage.sequence}: {damage.problem}"


def _repair_outcome(session: Session, result: RepairResult) -> tuple[int, str]:
    """What repairing the session from the archive did, and the message level to say it with."""
    name = result.archive.name
    if session.pk not in result.sessions:
        return messages.WARNING, f"not in the newest backup {name}; nothing repaired."
    repaired = [str(item.sequence) for item in result.repaired if item.session_id == session.pk]
    failed = [item for item in result.unrepairable if item.session_id == session.pk]
    parts = [f"repaired chunks {', '.join(repaired)} from {name}"] if repaired else []
    parts += [
        f"cannot repair chunk {item.sequence} ({item.problem}): {item.obstacle}" for item in failed
    ]
    if not parts:
        return messages.SUCCESS, f"nothing to repair ({name})."
    return messages.WARNING if failed else messages.SUCCESS, "; ".join(parts) + "."


class FirstChunksFormSet(BaseInlineFormSet):
    """Only the session's first CHUNKS_SHOWN chunks: a long recording has thousands."""

    def get_queryset(self) -> QuerySet[Chunk]:
        if not hasattr(self, "_first_chunks"):
            self._first_chunks = super().get_queryset()[:CHUNKS_SHOWN]
        return self._first_chunks


class ChunkInline(admin.TabularInline):
    model = Chunk
    formset = FirstChunksFormSet
    extra = 0
    can_delete = False
    template = "admin/sessions_app/session/chunks_inline.html"
    ordering = ["sequence"]
    fields = [
        "sequence",
        "status",
        "raw_size",
        "stored_size",
        "algorithm",
        "ratio",
        "key_id",
        "sha256_prefix",
        "download",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="size")
    def raw_size(self, chunk: Chunk) -> str:
        return size_text(chunk.size)

    @admin.display(description="compressed size")
    def stored_size(self, chunk: Chunk) -> str:
        return size_text(chunk.compressed_size)

    @admin.display(description="ratio")
    def ratio(self, chunk: Chunk) -> str:
        return ratio_text(chunk.size, chunk.compressed_size)

    @admin.display(description="sha256")
    def sha256_prefix(self, chunk: Chunk) -> str:
        return format_html('<code title="{}">{}…</code>', chunk.sha256, chunk.sha256[:16])

    @admin.display(description="raw bytes")
    def download(self, chunk: Chunk) -> str:
        url = reverse(
            "chunk-download", kwargs={"session_id": chunk.session_id, "sequence": chunk.sequence}
        )
        return format_html('<a href="{}">download</a>', url)


@admin.register(Session)
class SessionAdmin(
    SessionListAdmin,
    AuditHistoryMixin,
    ServiceTransactionsMixin,
    UUIDSearchMixin,
    admin.ModelAdmin,
):
    uuid_search_fields = ("id",)
    date_hierarchy = "created_at"
    inlines = [ChunkInline]
    actions = [
        "stop",
        "pause_pipeline",
        "resume_pipeline",
        "set_legal_hold",
        "clear_legal_hold",
        "verify",
        "repair_from_backup",
        "delete_selected",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("name", "status"),
                    ("owner", "host"),
                    ("remote_user", "client_address"),
                    ("id", "ingest_mode"),
                    "metadata_json",
                ]
            },
        ),
        ("Retention", {"fields": [("legal_hold", "retention_days")]}),
        (
            "Totals",
            {
                "fields": [
                    ("chunk_count", "size_display", "compressed_size_display", "ratio"),
                    ("backlog_display", "merkle_root"),
                    "gaps",
                ]
            },
        ),
        (
            "Recording format and times",
            {
                "fields": [
                    ("chunk_size_display", "compression_algorithm", "compression_level"),
                    ("content_type", "recorded_duration"),
                    ("created_at", "started_at", "stopped_at"),
                    ("last_data_at", "updated_at"),
                ],
                "classes": ["collapse"],
            },
        ),
    ]

    def audit_lookups(self, session: Session) -> dict[str, object]:
        return {"session_id": session.pk}

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [
            field for field in flatten_fieldsets(self.fieldsets) if field not in EDITABLE_FIELDS
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Sessions are created by recorders through the API."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        if obj is not None and obj.legal_hold:
            return False
        return super().has_delete_permission(request, obj)

    # --- columns and read-only fields ----------------------------------------------------------

    @admin.display(description="compressed size", ordering="compressed_size")
    def compressed_size_display(self, session: Session) -> str:
        return size_text(session.compressed_size)

    @admin.display(description="missing chunks")
    def gaps(self, session: Session) -> str:
        """The sequences missing below the highest one (a stopped, complete session has none)."""
        if session.complete:
            return "none"
        missing, count = session_missing_sequences(session=session, shown=GAPS_SHOWN)
        if not count:
            return "none"
        more = f" and {count - len(missing)} more" if count > len(missing) else ""
        return f"{count}: " + ", ".join(map(str, missing)) + more

    @admin.display(description="pipeline", ordering="pipeline__state")
    def pipeline_state(self, session: Session) -> str:
        pipeline = getattr(session, "pipeline", None)
        return pipeline.get_state_display() if pipeline else "-"

    @admin.display(description="chunk size")
    def chunk_size_display(self, session: Session) -> str:
        return size_text(session.chunk_size)

    @admin.display(description="backlog")
    def backlog_display(self, session: Session) -> str:
        return size_text(session.backlog_bytes)

    @admin.display(description="metadata")
    def metadata_json(self, session: Session) -> str:
        return format_html("<pre>{}</pre>", json.dumps(session.metadata, indent=2, sort_keys=True))

    # --- the session page ----------------------------------------------------------------------

    def render_change_form(
        self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None
    ) -> HttpResponse:
        if obj is not None:
            context.update(self._session_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _session_page_context(self, request: HttpRequest, session: Session) -> dict:
        """The player, pipeline, recent audit entries and download links around the fields."""
        audit_entries = None
        if request.user.has_perm("lucid.view_auditentry"):
            recent = AuditEntry.objects.filter(session_id=session.pk).order_by("-at", "-id")
            audit_entries = [
                (entry, json.dumps(entry.detail, sort_keys=True))
                for entry in recent[:AUDIT_ENTRIES_SHOWN]
            ]
        in_session = {"session_id": session.pk}
        pipeline = pipeline_status(session=session)
        chunks_url = f"{reverse('admin:chunks_app_chunk_changelist')}?session={session.pk}"
        return {
            "pipeline": pipeline,
            "pipeline_state": PipelineState(pipeline["state"]).label,
            "audit_entries": audit_entries,
            "audit_entries_shown": AUDIT_ENTRIES_SHOWN,
            "audit_url": audit_trail_url(session_id=session.pk),
            "chunks_url": chunks_url,
            "damaged_chunks_url": f"{chunks_url}&status__exact={ChunkStatus.DAMAGED}",
            "chunks_shown": min(CHUNKS_SHOWN, session.chunk_count),
            "recording_url": reverse("session-recording", kwargs=in_session),
            "manifest_url": reverse("session-manifest", kwargs=in_session),
            "player": self._player_context(session),
        }

    def _player_context(self, session: Session) -> dict | None:
        """Where the player of a video/mp4 recording reads; None for other content types."""
        if not is_playable(session):
            return None
        in_session = {"session_id": session.pk}
        return {
            "timeline_url": reverse("session-timeline", kwargs=in_session),
            "playlist_url": reverse("session-playlist", kwargs=in_session),
            "live": session.status in LIVE_STATUSES,
        }

    def save_model(self, request: HttpRequest, obj: Session, form, change: bool) -> None:
        """Changes go through `session_update`, as from the API: checked and audited."""
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        services.session_update(session=Session.objects.get(pk=obj.pk), data=changes)

    def get_deleted_objects(self, objs: Iterable[Session], request: HttpRequest):
        """The sessions with a count of their chunks, not one line per chunk."""
        sessions = list(objs)
        lines = [
            f"{session} with {session.chunk_count} chunks ({size_text(session.size)})"
            for session in sessions
        ]
        counts = {"sessions": len(sessions), "chunks": sum(s.chunk_count for s in sessions)}
        protected = [f"{session} is under legal hold" for session in sessions if session.legal_hold]
        return lines, counts, set(), protected

    def delete_model(self, request: HttpRequest, obj: Session) -> None:
        services.session_delete(session=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        for session in queryset:
            services.session_delete(session=session)

    # --- actions -------------------------------------------------------------------------------

    def _each(
        self, request: HttpRequest, sessions: Iterable[Session], apply: Callable[[Session], str]
    ) -> None:
        """Apply to each session and say what happened to it; refusals are warnings."""
        for session in sessions:
            try:
                outcome = apply(session)
            except ApplicationError as error:
                self.message_user(request, f"“{session.name}”: {error.message}", messages.WARNING)
            else:
                self.message_user(request, f"“{session.name}”: {outcome}", messages.SUCCESS)

    @admin.action(description="Stop recording", permissions=["change"])
    def stop(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        def stop_one(session: Session) -> str:
            session = chunk_services.session_stop(session=session)
            return f"the status is now '{session.status}'."

        self._each(request, queryset, stop_one)

    @admin.action(description="Pause the pipeline", permissions=["change"])
    def pause_pipeline(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        def pause_one(session: Session) -> str:
            pipeline = pipeline_services.pipeline_pause(session=session)
            return f"the pipeline is now '{pipeline.state}'; chunks wait as received."

        self._each(request, queryset, pause_one)

    @admin.action(description="Resume the pipeline", permissions=["change"])
    def resume_pipeline(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        def resume_one(session: Session) -> str:
            pipeline = pipeline_services.pipeline_resume(session=session)
            return f"the pipeline is now '{pipeline.state}'; waiting chunks are queued."

        self._each(request, queryset, resume_one)

    @admin.action(description="Set legal hold", permissions=["change"])
    def set_legal_hold(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        def hold(session: Session) -> str:
            services.session_update(session=session, data={"legal_hold": True})
            return "under legal hold."

        self._each(request, queryset, hold)

    @admin.action(description="Clear legal hold", permissions=["change"])
    def clear_legal_hold(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        def release(session: Session) -> str:
            services.session_update(session=session, data={"legal_hold": False})
            return "legal hold cleared."

        self._each(request, queryset, release)

    @admin.action(description="Verify the stored chunks", permissions=["view"])
    def verify(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        sessions = list(queryset)
        try:
            report = chunks_verify(session_ids=[session.pk for session in sessions])
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        for session in sessions:
            damages = [damage for damage in report.damages if damage.session_id == session.pk]
            if not damages:
                self.message_user(
                    request,
                    f"“{session.name}”: {session.chunk_count} chunks verified, no damage.",
                    messages.SUCCESS,
                )
                continue
            problems = "; ".join(_damage_text(damage) for damage in damages)
            self.message_user(
                request, f"“{session.name}”: {len(damages)} damaged: {problems}", messages.ERROR
            )

    @admin.action(description="Repair from the newest backup", permissions=["change"])
    def repair_from_backup(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        sessions = list(queryset)
        try:
            result = backup_repair(
                archive=backup_newest(directory=settings.LUCID_BACKUP_PATH),
                session_ids=[session.pk for session in sessions],
                dry_run=False,
            )
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        for session in sessions:
            level, outcome = _repair_outcome(session, result)
            self.message_user(request, f"“{session.name}”: {outcome}", level)

    @admin.action(description="Delete the selected sessions", permissions=["delete"])
    def delete_selected(
        self, request: HttpRequest, queryset: QuerySet[Session]
    ) -> HttpResponse | None:
        """Delete through `session_delete` after a confirmation; a session under hold stays."""
        sessions = list(queryset)
        deletable = [session for session in sessions if not session.legal_hold]
        if request.POST.get("post") == "yes" or not deletable:

            def delete_one(session: Session) -> str:
                services.session_delete(session=session)
                return f"deleted with its {session.chunk_count} chunks."

            self._each(request, sessions, delete_one)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete recording sessions?",
            "opts": self.opts,
            "deletable": deletable,
            "held": [session for session in sessions if session.legal_hold],
            "chunk_count": sum(session.chunk_count for session in deletable),
            "size": sum(session.size for session in deletable),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/sessions_app/session/delete_selected_confirmation.html", context
        )
