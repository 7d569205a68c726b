"""The /api/v1 routes of every app, and authentication."""

from django.urls import include, path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from lucid.api.views import WhoAmIView

urlpatterns = [
    path("auth/token", TokenObtainPairView.as_view(), name="token-obtain"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/me", WhoAmIView.as_view(), name="whoami"),
    path("", include("sessions_app.api.urls")),
    path("", include("chunks_app.api.urls")),
    path("", include("pipeline_app.api.urls")),
]
