"""Playback tokens: signed, expiring grants to read one session's recording as one user.

Media players cannot send our `Authorization` header, so the URIs of a session's playlist carry
one of these instead. Django's signing binds the session, the user and the expiry to the
project's secret key; changing any character spoils the signature.
"""

import math
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "lucid.playback-token"


class PlaybackTokenInvalid(Exception):
    """Not a token we signed, or one whose user may no longer read."""


class PlaybackTokenExpired(Exception):
    """A token we signed whose time is up."""


@dataclass(frozen=True)
class PlaybackGrant:
    """What a valid token allows: `user_id` reads session `session_id` until `expires_at`."""

    session_id: uuid.UUID
    user_id: str
    expires_at: int


def playback_token_issue(
    *, session_id: uuid.UUID, user_id: object, seconds: int | None = None
) -> str:
    """A token for `user_id` to read `session_id`'s recording for `seconds`
    (LUCID_PLAYBACK_TOKEN_SECONDS unless given)."""
    if seconds is None:
        seconds = settings.LUCID_PLAYBACK_TOKEN_SECONDS
    expires_at = math.ceil(time.time()) + seconds
    return signing.dumps({"s": str(session_id), "u": str(user_id), "e": expires_at}, salt=SALT)


def playback_token_read(token: str) -> PlaybackGrant:
    """The grant `token` carries; `PlaybackTokenInvalid` or `PlaybackTokenExpired` if none."""
    try:
        payload = signing.loads(token, salt=SALT)
        grant = PlaybackGrant(
            session_id=uuid.UUID(payload["s"]),
            user_id=str(payload["u"]),
            expires_at=int(payload["e"]),
        )
    except (signing.BadSignature, ValueError, KeyError, TypeError) as error:
        raise PlaybackTokenInvalid from error
    if grant.expires_at <= time.time():
        raise PlaybackTokenExpired
    return grant
