"""The /api/v1 routes of every app, and authentication."""

from django.urls import include, path
from rest_framework_simplejwt.views import TokenRefreshView

from lucid.api.routers import OptionalSlashRouter
from lucid.api.views import AuditEntryViewSet, TokenObtainView, WhoAmIView

router = OptionalSlashRouter()
router.register("audit", AuditEntryViewSet, basename="audit")

urlpatterns = [
    path("auth/token", TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/me", WhoAmIView.as_view(), name="whoami"),
    path("", include("sessions_app.api.urls")),
    path("", include("chunks_app.api.urls")),
    path("", include("pipeline_app.api.urls")),
    *router.urls,
]
