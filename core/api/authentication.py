"""Authentication beyond DRF's own: JWT access tokens whose errors say what to do, API keys and
access tokens whose users come from the identity cache, and a playback token in the query
string, for the views a media player reads."""

from functools import lru_cache

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, Token
from rest_framework_simplejwt.utils import aware_utcnow, datetime_from_epoch

from core.playback_tokens import (
    PlaybackGrant,
    PlaybackTokenExpired,
    PlaybackTokenInvalid,
    playback_token_read,
)
from core.selectors import api_key_user_get, user_get

TOKEN_PARAMETER = "token"
# Access tokens a process remembers as checked (a few hundred bytes each).
CHECKED_TOKENS_KEPT = 4096
READ_METHODS = frozenset({"GET", "HEAD"})
# Where to get another JWT of each type.
TOKEN_REMEDIES = {
    "access": (
        "get a new one from POST /api/v1/auth/token/refresh with your refresh token, "
        "or a new pair from POST /api/v1/auth/token"
    ),
    "refresh": "get a new pair from POST /api/v1/auth/token with username and password",
}


def token_expired(
    token_class: type[Token], raw_token: str | bytes
) -> exceptions.AuthenticationFailed:
    """401 `token_expired` for a JWT whose signature holds and whose time is up, saying when it
    expired and where to get another."""
    expired_at = datetime_from_epoch(token_class(raw_token, verify=False)["exp"])
    kind = token_class.token_type
    return exceptions.AuthenticationFailed(
        f"The {kind} token expired at {expired_at.isoformat()}; {TOKEN_REMEDIES[kind]}.",
        code="token_expired",
    )


@lru_cache(maxsize=CHECKED_TOKENS_KEPT)
def _access_token(raw_token: bytes) -> AccessToken:
    """The access token of this text, its signature and claims checked: once per process, as a
    client sends the same token with every request until it expires (checked on each use)."""
    return AccessToken(raw_token)


class AccessTokenAuthentication(JWTAuthentication):
    """`Authorization: Bearer <access>`; an expired token answers `token_expired`, any other
    bad one `token_not_valid`, each saying where to get a good one."""

    def get_user(self, validated_token: Token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError:
            raise InvalidToken(
                f"The access token names no user; {TOKEN_REMEDIES['refresh']}."
            ) from None
        user = user_get(user_id=user_id)
        if user is None:
            raise exceptions.AuthenticationFailed(
                "The token's user no longer exists; log in as another user.", code="user_not_found"
            )
        if not user.is_active:
            raise exceptions.AuthenticationFailed(
                "The token's user is deactivated; ask an administrator to activate it.",
                code="user_inactive",
            )
        return user

    def get_validated_token(self, raw_token: bytes) -> Token:
        try:
            token = _access_token(raw_token)
        except ExpiredTokenError:
            raise token_expired(AccessToken, raw_token) from None
        except TokenError as error:
            raise exceptions.AuthenticationFailed(
                f"The Bearer token is not a valid access token ({error}); "
                f"{TOKEN_REMEDIES['access']}.",
                code="token_not_valid",
            ) from None
        try:
            token.check_exp(current_time=aware_utcnow())
        except TokenError:
            raise token_expired(AccessToken, raw_token) from None
        return token


class AccessTokenScheme(SimpleJWTScheme):
    """The access token in the schema, as drf-spectacular describes simplejwt's."""

    target_class = AccessTokenAuthentication


class ApiKeyAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, a recorder machine's API key (DRF's token)."""

    def authenticate_credentials(self, key: str):
        user = api_key_user_get(key=key)
        if user is None:
            raise exceptions.AuthenticationFailed(
                "No user has this API key; ask an administrator for a key "
                "(`manage.py issue_token <username>`)."
            )
        if not user.is_active:
            raise exceptions.AuthenticationFailed(
                "The API key's user is deactivated; ask an administrator to activate it."
            )
        return user, key


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
        user = user_get(user_id=grant.user_id)
        if user is None or not user.is_active:
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
