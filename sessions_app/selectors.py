"""Reads of recording sessions."""

import uuid

from django.db.models import QuerySet

from lucid.errors import NotFound
from sessions_app.models import Session


def session_list() -> QuerySet[Session]:
    return Session.objects.select_related("owner")


def session_get(*, session_id: str | uuid.UUID) -> Session:
    """The session with this id; a malformed or unknown id is `NotFound`."""
    try:
        key = session_id if isinstance(session_id, uuid.UUID) else uuid.UUID(str(session_id))
        return session_list().get(pk=key)
    except (ValueError, Session.DoesNotExist) as error:
        raise NotFound(f"No session with id '{session_id}'.") from error
