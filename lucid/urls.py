"""Top-level routes: the API, its schema and docs (where `/` leads), and the admin."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from lucid.dashboard import dashboard_view
from lucid.health import HealthView
from lucid.metrics import metrics_view

# chunks_app before sessions_app: its `sessions/statistics` must come before `sessions/{id}`.
api_v1_urlpatterns = [
    path("", include("core.api.urls")),
    path("", include("chunks_app.api.urls")),
    path("", include("sessions_app.api.urls")),
    path("", include("pipeline_app.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="swagger-ui"), name="home"),
    path("api/v1/", include(api_v1_urlpatterns)),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("health", HealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
]

handler400 = "core.api.exceptions.bad_request"
handler403 = "core.api.exceptions.permission_denied"
handler404 = "core.api.exceptions.page_not_found"
handler500 = "core.api.exceptions.server_error"
