"""The audit trail: services record who did what; the request or command says who and where.

A request's user and address come from the request being served (set by `AuditMiddleware`);
commands and tasks name themselves with `audit_actor("command:cleanup")`.

Reads that are served often (downloads, the manifest) record with `audit_record_on_close`: the
entry is made while the request is served, written to the process's journal on disk before the
response is returned (core/audit_journal.py), and saved in the database when the server closes
the response, once the body is sent, together with the entries of every other response closed
meanwhile.
"""

import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

from core.audit_journal import audit_journal_saved, audit_journal_write
from core.choices import AuditAction
from core.http.clients import client_address
from core.models import AuditEntry

logger = logging.getLogger(__name__)


@dataclass
class _Served:
    """The request being served and the entries to save when its response is closed."""

    request: HttpRequest
    on_close: list[AuditEntry] = field(default_factory=list)


_served: ContextVar[_Served | None] = ContextVar("audit_served", default=None)
_actor: ContextVar[str] = ContextVar("audit_actor", default="system")
_unsaved: list[AuditEntry] = []
_unsaved_lock = threading.Lock()
_saving = threading.Lock()


class AuditMiddleware:
    """Make the request being served known to `audit_record`; save the entries it left for the
    response's close then."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        served = _Served(request)
        token = _served.set(served)
        try:
            response = self.get_response(request)
        finally:
            _served.reset(token)
        if served.on_close:
            try:
                audit_journal_write(served.on_close)
            except OSError:
                logger.exception("audit: the journal cannot be written; saving before the response")
                AuditEntry.objects.bulk_create(served.on_close)
                return response
            # Django's handlers and servers call these from `close()`, after the body is sent.
            response._resource_closers.append(functools.partial(_entries_save, served.on_close))
        return response


@contextmanager
def audit_actor(name: str) -> Iterator[None]:
    """Name the actor of audit entries recorded outside a request, e.g. `command:restore`."""
    token = _actor.set(name)
    try:
        yield
    finally:
        _actor.reset(token)


def _who(served: _Served | None) -> tuple[str, str | None]:
    if served is None:
        return _actor.get(), None
    user = getattr(served.request, "user", None)
    name = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    return name, client_address(served.request)


def _entry(
    served: _Served | None,
    *,
    action: AuditAction,
    session_id: uuid.UUID | None,
    sequence: int | None,
    detail: dict[str, Any] | None,
) -> AuditEntry:
    actor, address = _who(served)
    return AuditEntry(
        actor=actor,
        address=address,
        action=action,
        session_id=session_id,
        sequence=sequence,
        detail=detail or {},
    )


def audit_record(
    *,
    action: AuditAction,
    session_id: uuid.UUID | None = None,
    sequence: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = _entry(
        _served.get(), action=action, session_id=session_id, sequence=sequence, detail=detail
    )
    entry.save(force_insert=True)
    return entry


def audit_record_on_close(
    *,
    action: AuditAction,
    session_id: uuid.UUID | None = None,
    sequence: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record an entry made now once the response being served is closed; at once outside a
    request."""
    served = _served.get()
    entry = _entry(served, action=action, session_id=session_id, sequence=sequence, detail=detail)
    if served is None:
        entry.save(force_insert=True)
    else:
        served.on_close.append(entry)


def _entries_save(entries: list[AuditEntry]) -> None:
    """Save `entries` and every other entry waiting, in one insert; return once they are saved.

    A response's close comes here after its body is sent. Closes in other threads meanwhile
    wait for the one saving, then find their entries saved with its batch or save the next one.
    A batch the database refuses stays waiting, for the next close to save, and is logged; its
    entries stay in the journal too, for a replay should this process die first.
    """
    with _unsaved_lock:
        _unsaved.extend(entries)
    with _saving:
        with _unsaved_lock:
            batch = _unsaved[:]
            _unsaved.clear()
        if not batch:
            return
        try:
            if len(batch) == 1:  # one statement: bulk_create would wrap it in BEGIN and COMMIT
                batch[0].save(force_insert=True)
            else:
                AuditEntry.objects.bulk_create(batch)
        except Exception:
            with _unsaved_lock:
                _unsaved[:0] = batch
            logger.exception("audit: %d entries wait to be saved at the next close", len(batch))
        else:
            audit_journal_saved(batch)


@receiver(user_login_failed)
def _record_login_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    AuditEntry.objects.create(
        actor=username or "anonymous",
        address=client_address(request) if request is not None else None,
        action=AuditAction.LOGIN_FAILED,
        detail={"username": username},
    )
