"""Routes of chunks under /api/v1/sessions/{session_id}, and of a session's stop and statistics."""

from django.urls import re_path

from chunks_app.api import views
from core.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("sessions", views.SessionChunksViewSet, basename="session")
session_urlpatterns = router.urls

SESSION = r"^sessions/(?P<session_id>[^/]+)"
CHUNK = rf"{SESSION}/chunks/(?P<sequence>[0-9]{{1,19}})"

ingest_urlpatterns = [
    re_path(rf"{SESSION}/chunks/?$", views.ChunkListView.as_view(), name="chunk-list"),
    re_path(rf"{CHUNK}/?$", views.ChunkDetailView.as_view(), name="chunk-detail"),
    re_path(rf"{SESSION}/stream/?$", views.SessionStreamView.as_view(), name="session-stream"),
]

urlpatterns = [
    *ingest_urlpatterns,
    re_path(rf"{CHUNK}/download/?$", views.ChunkDownloadView.as_view(), name="chunk-download"),
    re_path(
        rf"{SESSION}/recording/?$", views.SessionRecordingView.as_view(), name="session-recording"
    ),
    # The same for media players, which want a media file name (ffmpeg refuses HLS segment URIs
    # without one).
    re_path(
        rf"{SESSION}/recording\.mp4$",
        views.SessionRecordingView.as_view(),
        name="session-recording-mp4",
    ),
    re_path(
        rf"{SESSION}/manifest/?$", views.SessionManifestView.as_view(), name="session-manifest"
    ),
    re_path(
        rf"{SESSION}/timeline/?$", views.SessionTimelineView.as_view(), name="session-timeline"
    ),
    re_path(
        rf"{SESSION}/playlist\.m3u8$", views.SessionPlaylistView.as_view(), name="session-playlist"
    ),
    *session_urlpatterns,
]
