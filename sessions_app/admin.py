"""Recording sessions in the operator console."""

from django.contrib import admin

from sessions_app.models import Session


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "owner", "host", "size", "chunk_count", "created_at"]
    list_filter = ["status", "compression_algorithm", "legal_hold"]
    search_fields = ["name", "host", "id"]
    readonly_fields = [
        "id",
        "owner",
        "status",
        "created_at",
        "updated_at",
        "started_at",
        "stopped_at",
        "chunk_count",
        "size",
        "compressed_size",
    ]
    date_hierarchy = "created_at"
