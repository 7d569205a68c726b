"""The audit trail: services record who did what; the request or command says who and where.

A request's user and address come from the request being served (set by `AuditMiddleware`);
commands and tasks name themselves with `audit_actor("command:cleanup")`.
"""

import ipaddress
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import BaseThrottle

from core.choices import AuditAction
from core.models import AuditEntry

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_actor: ContextVar[str] = ContextVar("audit_actor", default="system")


class AuditMiddleware:
    """Make the request being served known to `audit_record`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextmanager
def audit_actor(name: str) -> Iterator[None]:
    """Name the actor of audit entries recorded outside a request, e.g. `command:restore`."""
    token = _actor.set(name)
    try:
        yield
    finally:
        _actor.reset(token)


def _client_address(request: HttpRequest) -> str | None:
    """The client's IP address as DRF's throttles read it: from X-Forwarded-For only behind
    LUCID_NUM_PROXIES trusted proxies, else REMOTE_ADDR; None if that is no IP address."""
    address = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _who() -> tuple[str, str | None]:
    request = _request.get()
    if request is None:
        return _actor.get(), None
    user = getattr(request, "user", None)
    name = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    return name, _client_address(request)


def audit_record(
    *,
    action: AuditAction,
    session_id: uuid.UUID | None = None,
    sequence: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    actor, address = _who()
    return AuditEntry.objects.create(
        actor=actor,
        address=address,
        action=action,
        session_id=session_id,
        sequence=sequence,
        detail=detail or {},
    )


@receiver(user_login_failed)
def _record_login_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    AuditEntry.objects.create(
        actor=username or "anonymous",
        address=_client_address(request) if request is not None else None,
        action=AuditAction.LOGIN_FAILED,
        detail={"username": username},
    )
