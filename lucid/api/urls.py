"""The /api/v1 routes of every app, and authentication."""

from django.urls import include, path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

urlpatterns = [
    path("auth/token", TokenObtainPairView.as_view(), name="token-obtain"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="token-refresh"),
    path("", include("sessions_app.api.urls")),
    path("", include("chunks_app.api.urls")),
    path("", include("pipeline_app.api.urls")),
]
