"""HTTP endpoints of a session's pipeline: its status, pause, resume and retry."""

from collections.abc import Callable

from drf_spectacular.utils import extend_schema, extend_schema_view
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


class PipelineActionView(SessionScopedMixin, APIView):
    """A POST that acts on the session's pipeline through `service` and answers its status."""

    service: Callable[..., object]

    def post(self, request: Request, session_id: str) -> Response:
        session = self.get_session()
        self.service(session=session)
        return Response(PipelineSerializer(pipeline_status(session=session)).data)


def _action_schema(summary: str, *errors: int):
    """The OpenAPI description of a pipeline action's POST."""
    return extend_schema_view(
        post=extend_schema(
            summary=summary,
            request=None,
            responses={200: PipelineSerializer, **error_responses(*errors)},
        )
    )


@_action_schema("Pause the pipeline", 404, 409)
class PipelinePauseView(PipelineActionView):
    """Pause processing; recording goes on and chunks wait as `received`."""

    service = staticmethod(services.pipeline_pause)


@_action_schema("Resume the pipeline", 404, 409)
class PipelineResumeView(PipelineActionView):
    """Resume processing, starting with every chunk that waited."""

    service = staticmethod(services.pipeline_resume)


@_action_schema("Retry the failed chunks", 404)
class PipelineRetryView(PipelineActionView):
    """Queue again the `failed` chunks whose spooled bytes are still there.

    Chunks that waited after a transient failure (no space, storage or database unavailable)
    are queued again on their own; this is for those that failed, once their cause is fixed.
    """

    service = staticmethod(services.pipeline_retry)
