"""HTTP endpoints of a session's pipeline: its status, pause and resume."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chunks_app.api.views import SessionScopedMixin
from core.api.schema import error_responses
from pipeline_app import services
from pipeline_app.api.serializers import PipelineSerializer
from pipeline_app.selectors import pipeline_status


class PipelineView(SessionScopedMixin, APIView):
    """The processing state of a session's chunks."""

    recorder_operations = ("get",)

    @extend_schema(
        summary="Get the session's pipeline",
        responses={200: PipelineSerializer, **error_responses(404)},
    )
    def get(self, request: Request, session_id: str) -> Response:
        return Response(PipelineSerializer(pipeline_status(session=self.get_session())).data)


class PipelinePauseView(SessionScopedMixin, APIView):
    """Pause processing; recording goes on and chunks wait as `received`."""

    @extend_schema(
        summary="Pause the pipeline",
        request=None,
        responses={200: PipelineSerializer, **error_responses(404, 409)},
    )
    def post(self, request: Request, session_id: str) -> Response:
        session = self.get_session()
        services.pipeline_pause(session=session)
        return Response(PipelineSerializer(pipeline_status(session=session)).data)


class PipelineResumeView(SessionScopedMixin, APIView):
    """Resume processing, starting with every chunk that waited."""

    @extend_schema(
        summary="Resume the pipeline",
        request=None,
        responses={200: PipelineSerializer, **error_responses(404, 409)},
    )
    def post(self, request: Request, session_id: str) -> Response:
        session = self.get_session()
        services.pipeline_resume(session=session)
        return Response(PipelineSerializer(pipeline_status(session=session)).data)
