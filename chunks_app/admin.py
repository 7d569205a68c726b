"""Chunks in the operator console: a read-only list across sessions."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from chunks_app.models import Chunk
from core.admin import AuditHistoryMixin, ReadOnlyAdmin, UUIDSearchMixin
from core.units import milliseconds_text, ratio_text, size_text


@admin.register(Chunk)
class ChunkAdmin(AuditHistoryMixin, UUIDSearchMixin, ReadOnlyAdmin):
    list_display = [
        "sequence",
        "session_link",
        "status",
        "raw_size",
        "stored_size",
        "algorithm",
        "ratio",
        "key_id",
        "attempts",
        "processing_time",
        "created_at",
        "stored_at",
    ]
    list_display_links = ["sequence"]
    list_select_related = ["session"]
    list_filter = ["status", "algorithm", "key_id", "created_at"]
    search_fields = ["session__name", "sha256"]
    uuid_search_fields = ("session_id", "id")
    ordering = ["-created_at"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["id", "session_link", "sequence", "status", "error", "attempts"]}),
        (
            "Bytes",
            {
                "fields": [
                    "raw_size",
                    "sha256",
                    "algorithm",
                    "stored_size",
                    "ratio",
                    "stored_sha256",
                    "key_id",
                    "storage_key",
                    "spool_key",
                    "download",
                ]
            },
        ),
        ("Times", {"fields": ["created_at", "stored_at", "processing_time"]}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def audit_lookups(self, chunk: Chunk) -> dict[str, object]:
        return {"session_id": chunk.session_id, "sequence": chunk.sequence}

    @admin.display(description="session", ordering="session__name")
    def session_link(self, chunk: Chunk) -> str:
        url = reverse("admin:sessions_app_session_change", args=[chunk.session_id])
        return format_html('<a href="{}">{}</a>', url, chunk.session.name)

    @admin.display(description="size", ordering="size")
    def raw_size(self, chunk: Chunk) -> str:
        return size_text(chunk.size)

    @admin.display(description="compressed size", ordering="compressed_size")
    def stored_size(self, chunk: Chunk) -> str:
        return size_text(chunk.compressed_size)

    @admin.display(description="ratio")
    def ratio(self, chunk: Chunk) -> str:
        return ratio_text(chunk.size, chunk.compressed_size)

    @admin.display(description="processing time", ordering="processing_ms")
    def processing_time(self, chunk: Chunk) -> str:
        return milliseconds_text(chunk.processing_ms)

    @admin.display(description="raw bytes")
    def download(self, chunk: Chunk) -> str:
        url = reverse(
            "chunk-download", kwargs={"session_id": chunk.session_id, "sequence": chunk.sequence}
        )
        return format_html('<a href="{}">download</a>', url)
