"""Routes of the recorder role: what recorders use to authenticate, control and upload."""

from django.urls import include, path
from rest_framework_simplejwt.views import TokenRefreshView

from chunks_app.api.urls import ingest_urlpatterns
from lucid.api.views import TokenObtainView
from lucid.health import HealthView
from lucid.metrics import metrics_view

urlpatterns = [
    path("api/v1/auth/token", TokenObtainView.as_view(), name="token-obtain"),
    path("api/v1/auth/token/refresh", TokenRefreshView.as_view(), name="token-refresh"),
    path("api/v1/", include("sessions_app.api.urls")),
    path("api/v1/", include(ingest_urlpatterns)),
    path("api/v1/", include("pipeline_app.api.urls")),
    path("health", HealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
]
