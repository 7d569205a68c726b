"""The operator console's admin site: its index and sidebar in sections by concern, sessions
first, and the index's key figures above them.

Models no section names keep their app's section, after ours, so a new model is never hidden;
the Celery-beat schedule models are reached from a periodic task's form instead of the index.
"""

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.text import slugify

from lucid.dashboard import index_figures

SECTIONS = [
    ("Recordings", [("sessions_app", "Session"), ("chunks_app", "Chunk")]),
    ("Processing", [("pipeline_app", "Pipeline")]),
    ("Audit", [("lucid", "AuditEntry")]),
    ("Access", [("auth", "User"), ("auth", "Group"), ("authtoken", "TokenProxy")]),
    ("Schedules", [("django_celery_beat", "PeriodicTask")]),
]
NOT_ON_THE_INDEX = {
    ("django_celery_beat", name)
    for name in ("ClockedSchedule", "CrontabSchedule", "IntervalSchedule", "SolarSchedule")
}


def admin_sections(apps: list[dict]) -> list[dict]:
    """The apps of Django's index regrouped into SECTIONS, in that order, then the rest."""
    unplaced = {
        (app["app_label"], model["object_name"]): (model, app)
        for app in apps
        for model in app["models"]
    }
    sections = []
    for name, keys in SECTIONS:
        placed = [unplaced.pop(key) for key in keys if key in unplaced]
        if not placed:
            continue
        first_model, first_app = placed[0]
        sections.append(
            {
                "name": name,
                "app_label": slugify(name),
                "app_url": first_model["admin_url"] or first_app["app_url"],
                "has_module_perms": True,
                "models": [model for model, _ in placed],
            }
        )
    for app in apps:
        rest = [
            model
            for key, (model, of) in unplaced.items()
            if of is app and key not in NOT_ON_THE_INDEX
        ]
        if rest:
            sections.append({**app, "models": rest})
    return sections


class LucidAdminSite(admin.AdminSite):
    site_header = "Lucid session storage"
    site_title = "Lucid"
    index_title = "Operator console"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = super().get_app_list(request, app_label)
        return apps if app_label else admin_sections(apps)

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        return super().index(request, {"figures": index_figures(), **(extra_context or {})})
