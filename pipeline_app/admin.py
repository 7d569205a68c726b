"""Pipelines in the operator console: read-only but for one action, retrying failed chunks."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.admin import AuditHistoryMixin, ReadOnlyAdmin, UUIDSearchMixin
from core.units import size_text
from pipeline_app.models import Pipeline
from pipeline_app.services import pipeline_retry


@admin.register(Pipeline)
class PipelineAdmin(AuditHistoryMixin, UUIDSearchMixin, ReadOnlyAdmin):
    list_display = [
        "session_name",
        "session_link",
        "state",
        "session_status",
        "chunks_waiting",
        "chunks_stored",
        "chunks_failed",
        "chunks_damaged",
        "backlog",
        "last_error",
        "updated_at",
    ]
    list_select_related = ["session"]
    list_filter = ["state", "session__status"]
    search_fields = ["session__name", "last_error"]
    uuid_search_fields = ("session_id",)
    ordering = ["-updated_at"]
    fields = list_display
    readonly_fields = fields
    actions = ["retry_failed"]

    def audit_lookups(self, pipeline: Pipeline) -> dict[str, object]:
        return {"session_id": pipeline.session_id}

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Whoever may change pipelines (operators), as pause and resume need."""
        return request.user.has_perm("pipeline_app.change_pipeline")

    @admin.action(description="Retry the failed chunks", permissions=["retry"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Pipeline]) -> None:
        for pipeline in queryset.select_related("session"):
            retried = pipeline_retry(session=pipeline.session)
            self.message_user(
                request,
                f"“{pipeline.session.name}”: {retried} failed chunk(s) queued again.",
                messages.SUCCESS,
            )

    @admin.display(description="session", ordering="session__name")
    def session_name(self, pipeline: Pipeline) -> str:
        return pipeline.session.name

    @admin.display(description="session page")
    def session_link(self, pipeline: Pipeline) -> str:
        url = reverse("admin:sessions_app_session_change", args=[pipeline.session_id])
        return format_html('<a href="{}">{}</a>', url, pipeline.session_id)

    @admin.display(description="recording", ordering="session__status")
    def session_status(self, pipeline: Pipeline) -> str:
        return pipeline.session.get_status_display()

    @admin.display(description="waiting")
    def chunks_waiting(self, pipeline: Pipeline) -> int:
        return pipeline.session.chunks_received + pipeline.session.chunks_processing

    @admin.display(description="stored", ordering="session__chunks_stored")
    def chunks_stored(self, pipeline: Pipeline) -> int:
        return pipeline.session.chunks_stored

    @admin.display(description="failed", ordering="session__chunks_failed")
    def chunks_failed(self, pipeline: Pipeline) -> int:
        return pipeline.session.chunks_failed

    @admin.display(description="damaged", ordering="session__chunks_damaged")
    def chunks_damaged(self, pipeline: Pipeline) -> int:
        return pipeline.session.chunks_damaged

    @admin.display(description="backlog", ordering="session__backlog_bytes")
    def backlog(self, pipeline: Pipeline) -> str:
        return size_text(pipeline.session.backlog_bytes)
