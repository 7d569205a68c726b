"""Routes of authentication and the audit trail under /api/v1."""

from django.urls import path

from core.api.routers import OptionalSlashRouter
from core.api.views import AuditEntryViewSet, TokenObtainView, TokenRefreshView, WhoAmIView

router = OptionalSlashRouter()
router.register("audit", AuditEntryViewSet, basename="audit")

auth_urlpatterns = [
    path("auth/token", TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="token-refresh"),
]

urlpatterns = [
    *auth_urlpatterns,
    path("auth/me", WhoAmIView.as_view(), name="whoami"),
    *router.urls,
]
