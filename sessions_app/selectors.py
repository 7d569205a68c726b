"""Reads of recording sessions."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import QuerySet

from core.errors import NotFound
from core.roles import sees_only_own_sessions
from sessions_app.models import Session


def session_list(*, visible_to: AbstractBaseUser | None = None) -> QuerySet[Session]:
    """Sessions, all of them or those `visible_to` a user (a recorder sees only its own)."""
    sessions = Session.objects.select_related("owner")
    if visible_to is not None and sees_only_own_sessions(visible_to):
        sessions = sessions.filter(owner=visible_to)
    return sessions


@dataclass(frozen=True)
class SessionAccess:
    """What stays the same for a session's whole life: enough to find and authorize its chunks."""

    pk: uuid.UUID
    owner_id: int


def _session_key(session_id: str | uuid.UUID) -> uuid.UUID:
    try:
        return session_id if isinstance(session_id, uuid.UUID) else uuid.UUID(str(session_id))
    except ValueError as error:
        raise NotFound(f"No session with id '{session_id}'.") from error


def session_access_cache_key(session_id: uuid.UUID) -> str:
    return f"lucid:session-access:{session_id}"


def session_get(*, session_id: str | uuid.UUID, fields: Iterable[str] = ()) -> Session:
    """The session with this id, only `fields` of it if given (`relation__field` joins the
    relation in); a malformed or unknown id is `NotFound`."""
    sessions = session_list()
    if fields:
        sessions = Session.objects.only(*fields)
        if related := {name.partition("__")[0] for name in fields if "__" in name}:
            sessions = sessions.select_related(*related)
    try:
        return sessions.get(pk=_session_key(session_id))
    except Session.DoesNotExist as error:
        raise NotFound(f"No session with id '{session_id}'.") from error


def session_access_get(*, session_id: str | uuid.UUID) -> SessionAccess:
    """The session's id and owner, from the cache when it can; `NotFound` like `session_get`.

    The hot reads of a session's chunks need no more, so they skip the session's row. A deleted
    session's entry goes when the deletion commits.
    """
    key = _session_key(session_id)
    cache_key = session_access_cache_key(key)
    owner_id = cache.get(cache_key)
    if owner_id is None:
        owner_id = Session.objects.filter(pk=key).values_list("owner_id", flat=True).first()
        if owner_id is None:
            raise NotFound(f"No session with id '{session_id}'.")
        cache.set(cache_key, owner_id, timeout=settings.LUCID_SESSION_ACCESS_CACHE_SECONDS)
    return SessionAccess(pk=key, owner_id=owner_id)
