"""Authentication by a playback token in the query string, for the views a media player reads."""

from django.contrib.auth import get_user_model
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from core.playback_tokens import (
    PlaybackGrant,
    PlaybackTokenExpired,
    PlaybackTokenInvalid,
    playback_token_read,
)

TOKEN_PARAMETER = "token"
READ_METHODS = frozenset({"GET", "HEAD"})


def _refused(message: str, code: str) -> exceptions.PermissionDenied:
    return exceptions.PermissionDenied(message, code=code)


class PlaybackTokenAuthentication(BaseAuthentication):
    """`?token=` from a playlist: the user it names, for reads of the session it names.

    The view compares `request.auth.session_id` with its session (`playback_grant_check`).
    """

    def authenticate(self, request: Request) -> tuple[object, PlaybackGrant] | None:
        token = request.query_params.get(TOKEN_PARAMETER)
        if token is None:
            return None
        if request.method not in READ_METHODS:
            raise _refused(
                "A playback token only reads (GET); send your API credentials for anything else.",
                "playback_token_get_only",
            )
        try:
            grant = playback_token_read(token)
        except PlaybackTokenExpired:
            raise _refused(
                "The playback token has expired; fetch the playlist again for a new one.",
                "playback_token_expired",
            ) from None
        except PlaybackTokenInvalid:
            raise _refused(
                "The playback token is not valid; fetch the playlist again for a new one.",
                "playback_token_invalid",
            ) from None
        user = get_user_model().objects.filter(pk=grant.user_id, is_active=True).first()
        if user is None:
            raise _refused(
                "The playback token's user may no longer read; fetch the playlist again.",
                "playback_token_invalid",
            )
        return user, grant


def playback_grant_check(request: Request, *, session_id: object) -> None:
    """Refuse a playback token given for another session than `session_id`."""
    if isinstance(request.auth, PlaybackGrant) and str(request.auth.session_id) != str(session_id):
        raise _refused(
            "This playback token is for another session.", "playback_token_wrong_session"
        )


class PlaybackTokenScheme(OpenApiAuthenticationExtension):
    """The playback token in the schema: an API key in the `token` query parameter."""

    target_class = PlaybackTokenAuthentication
    name = "playbackToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "query",
            "name": TOKEN_PARAMETER,
            "description": "A playback token from a playlist's URIs: GET of /recording only.",
        }
