"""Routes of the recorder role: what recorders use to authenticate, control and upload."""

from django.urls import include, path

from chunks_app.api.urls import ingest_urlpatterns, session_urlpatterns
from core.api.urls import auth_urlpatterns
from lucid.health import HealthView
from lucid.metrics import metrics_view

urlpatterns = [
    path("api/v1/", include(auth_urlpatterns)),
    path("api/v1/", include(session_urlpatterns)),
    path("api/v1/", include("sessions_app.api.urls")),
    path("api/v1/", include(ingest_urlpatterns)),
    path("api/v1/", include("pipeline_app.api.urls")),
    path("health", HealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
]

handler400 = "core.api.exceptions.bad_request"
handler403 = "core.api.exceptions.permission_denied"
handler404 = "core.api.exceptions.page_not_found"
handler500 = "core.api.exceptions.server_error"
