"""HTTP endpoints of recording sessions and their recording control (stop: `chunks_app.api`)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.filters import FilterBackend
from core.api.schema import error_responses
from core.roles import governs_retention
from sessions_app import services
from sessions_app.api.serializers import SessionSerializer
from sessions_app.filtersets import SessionFilterSet
from sessions_app.models import Session
from sessions_app.selectors import session_get, session_list

# The schema's description of the session routes without one of their own, wherever served.
SESSIONS_DESCRIPTION = (
    "Recording sessions: CRUD and the start / pause / resume / stop control actions."
)


def control_schema(verb: str, **extra):
    return extend_schema(
        request=None,
        **extra,
        responses={200: SessionSerializer, **error_responses(404, 409)},
        summary=f"{verb} the recording",
        description=f"{verb}s the recording; 409 names the current status if it cannot.",
    )


@extend_schema_view(
    list=extend_schema(
        description=SESSIONS_DESCRIPTION,
        summary="List sessions, newest first",
        responses={200: SessionSerializer(many=True), **error_responses(400)},
    ),
    create=extend_schema(
        description=SESSIONS_DESCRIPTION,
        summary="Create a session",
        responses={201: SessionSerializer, **error_responses(400, 507)},
    ),
    retrieve=extend_schema(
        description=SESSIONS_DESCRIPTION,
        summary="Get a session",
        responses={200: SessionSerializer, **error_responses(404)},
    ),
    update=extend_schema(
        description=SESSIONS_DESCRIPTION,
        summary="Replace a session's writable fields",
        responses={200: SessionSerializer, **error_responses(400, 404, 409)},
    ),
    partial_update=extend_schema(
        description=SESSIONS_DESCRIPTION,
        summary="Change some of a session's writable fields",
        responses={200: SessionSerializer, **error_responses(400, 404, 409)},
    ),
    destroy=extend_schema(
        description=SESSIONS_DESCRIPTION,
        summary="Delete a session with its chunks",
        responses={204: None, **error_responses(404, 409)},
    ),
)
class SessionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Recording sessions: CRUD and the start / pause / resume control actions."""

    serializer_class = SessionSerializer
    filter_backends = [FilterBackend, filters.SearchFilter, filters.OrderingFilter]
    filterset_class = SessionFilterSet
    search_fields = ["name", "host", "remote_user", "client_address"]
    ordering_fields = ["created_at", "name", "size"]
    ordering = ["-created_at"]
    lookup_value_regex = "[^/]+"
    recorder_operations = (
        "list",
        "create",
        "retrieve",
        "update",
        "partial_update",
        "start",
        "pause",
        "resume",
    )

    def get_queryset(self):
        return session_list(visible_to=self.request.user)

    def get_object(self) -> Session:
        session = session_get(session_id=self.kwargs["pk"])
        self.check_object_permissions(self.request, session)
        return session

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self._check_retention_fields(serializer.validated_data)
        session = services.session_create(owner=request.user, **serializer.validated_data)
        return Response(self.get_serializer(session).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str) -> Response:
        return self._update(request, partial=False)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self._update(request, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        services.session_delete(session=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @control_schema("Start")
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self._render(services.session_start(session=self.get_object()))

    @control_schema("Pause")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        return self._render(services.session_pause(session=self.get_object()))

    @control_schema("Resume")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._render(services.session_resume(session=self.get_object()))

    def _update(self, request: Request, *, partial: bool) -> Response:
        session = self.get_object()
        serializer = self.get_serializer(session, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        self._check_retention_fields(
            {
                field: value
                for field, value in serializer.validated_data.items()
                if getattr(session, field) != value
            }
        )
        session = services.session_update(session=session, data=serializer.validated_data)
        return self._render(session)

    def _check_retention_fields(self, data: dict) -> None:
        if {"legal_hold", "retention_days"} & set(data) and not governs_retention(
            self.request.user
        ):
            raise PermissionDenied("Only operators set legal_hold and retention_days.")

    def _render(self, session: Session) -> Response:
        return Response(self.get_serializer(session).data)
