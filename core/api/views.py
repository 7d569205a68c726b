"""API views that belong to no app: JWT tokens, who the caller is, and the audit trail."""

from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from core.api.authentication import token_expired
from core.api.schema import error_responses
from core.api.serializers import AuditEntrySerializer
from core.api.throttling import SharedScopedRateThrottle
from core.filtersets import AuditEntryFilterSet
from core.models import AuditEntry


@extend_schema(
    summary="Obtain a JWT pair",
    responses={
        200: TokenObtainPairSerializer,
        **error_responses(400, 401, 429, authenticated=False),
    },
)
class TokenObtainView(jwt_views.TokenObtainPairView):
    """A JWT pair for a username and password; limited per client address against guessing."""

    throttle_classes = [SharedScopedRateThrottle]
    throttle_scope = "auth"


@extend_schema(
    summary="Refresh a JWT access token",
    responses={200: TokenRefreshSerializer, **error_responses(400, 401, authenticated=False)},
)
class TokenRefreshView(jwt_views.TokenRefreshView):
    """A new access token for a refresh token that is valid and not expired."""

    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except InvalidToken as error:
            if isinstance(error.__cause__, ExpiredTokenError):
                raise token_expired(RefreshToken, request.data["refresh"]) from None
            raise


class WhoAmIView(APIView):
    """The authenticated user, for clients to check their credentials."""

    recorder_operations = ("get",)

    @extend_schema(
        summary="Who am I",
        responses={
            200: inline_serializer(
                "Me", {"username": serializers.CharField(), "is_staff": serializers.BooleanField()}
            ),
            **error_responses(),
        },
    )
    def get(self, request: Request) -> Response:
        return Response(
            {"username": request.user.get_username(), "is_staff": request.user.is_staff}
        )


@extend_schema_view(
    list=extend_schema(
        summary="The audit trail, newest first",
        responses={200: AuditEntrySerializer(many=True), **error_responses(400)},
    ),
    retrieve=extend_schema(
        summary="One audit entry", responses={200: AuditEntrySerializer, **error_responses(404)}
    ),
)
class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every audited action, for operators and auditors; entries never change."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet
    ordering = ("-at",)
