"""Routes of recording sessions under /api/v1."""

from core.api.routers import OptionalSlashRouter
from sessions_app.api.views import SessionViewSet

router = OptionalSlashRouter()
router.register("sessions", SessionViewSet, basename="session")

urlpatterns = router.urls
