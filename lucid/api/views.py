"""API views that belong to no app: who the caller is."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lucid.api.schema import error_responses


class WhoAmIView(APIView):
    """The authenticated user, for clients to check their credentials."""

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
