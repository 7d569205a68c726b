"""Reads of recording sessions."""

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from lucid.errors import NotFound
from lucid.roles import sees_only_own_sessions
from sessions_app.models import Session


def session_list(*, visible_to: AbstractBaseUser | None = None) -> QuerySet[Session]:
    """Sessions, all of them or those `visible_to` a user (a recorder sees only its own)."""
    sessions = Session.objects.select_related("owner")
    if visible_to is not None and sees_only_own_sessions(visible_to):
        sessions = sessions.filter(owner=visible_to)
    return sessions


def session_get(*, session_id: str | uuid.UUID) -> Session:
    """The session with this id; a malformed or unknown id is `NotFound`."""
    try:
        key = session_id if isinstance(session_id, uuid.UUID) else uuid.UUID(str(session_id))
        return session_list().get(pk=key)
    except (ValueError, Session.DoesNotExist) as error:
        raise NotFound(f"No session with id '{session_id}'.") from error
