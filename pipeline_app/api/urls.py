"""Routes of pipelines under /api/v1/sessions/{session_id}/pipeline."""

from django.urls import re_path

from pipeline_app.api import views

PIPELINE = r"^sessions/(?P<session_id>[^/]+)/pipeline"

urlpatterns = [
    re_path(rf"{PIPELINE}/?$", views.PipelineView.as_view(), name="pipeline"),
    re_path(rf"{PIPELINE}/pause/?$", views.PipelinePauseView.as_view(), name="pipeline-pause"),
    re_path(rf"{PIPELINE}/resume/?$", views.PipelineResumeView.as_view(), name="pipeline-resume"),
    re_path(rf"{PIPELINE}/retry/?$", views.PipelineRetryView.as_view(), name="pipeline-retry"),
]
