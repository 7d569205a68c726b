"""One error format for the whole API: `{"code", "message", "fields"?}`.

DRF's views answer errors through `exception_handler`; what Django answers itself under
/api/v1 (no route matched, an unexpected exception) goes through the error views below, which
the URLconfs name as their handler400/403/404/500. A full disk or failed storage is a 507 or 503
with Retry-After wherever it surfaces: in DRF's views or in Django's (the admin, /metrics).
"""

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.db import is_transient
from core.errors import ApplicationError, StorageUnavailable, is_storage_full

logger = logging.getLogger(__name__)

STORAGE_FULL_RETRY_AFTER_SECONDS = 60
STORAGE_UNAVAILABLE_RETRY_AFTER_SECONDS = 30
DATABASE_BUSY_RETRY_AFTER_SECONDS = 1
DATABASE_BUSY_MESSAGE = (
    "The database kept aborting this change for conflicting ones (on MongoDB, a process that "
    "died inside a transaction holds its documents for up to a minute); nothing was stored. "
    "Retry."
)
STORAGE_FULL_MESSAGE = (
    "No space is left where recordings and their database are stored; nothing was stored. "
    "Free disk space or raise the quota (e.g. `manage.py cleanup` removes expired sessions), "
    "then retry."
)


def _field_messages(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _field_messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [str(item) for item in detail]
        return [_field_messages(item) for item in detail]
    return [str(detail)]


def _first_code(detail: Any) -> str:
    if isinstance(detail, dict):
        detail = next(iter(detail.values()), "invalid")
    if isinstance(detail, list):
        return _first_code(detail[0]) if detail else "invalid"
    return getattr(detail, "code", None) or "invalid"


def storage_error_response(error: BaseException | None) -> JsonResponse | None:
    """507 `insufficient_storage` for a full disk or quota, 503 `storage_unavailable` for other
    failures of a store, 503 `database_busy` for conflicts that outlasted every retry, all with
    Retry-After; None for any other error."""
    if is_storage_full(error):
        status_code, code, message = 507, "insufficient_storage", STORAGE_FULL_MESSAGE
        retry_after = STORAGE_FULL_RETRY_AFTER_SECONDS
    elif isinstance(error, StorageUnavailable):
        status_code, code, message = 503, "storage_unavailable", str(error)
        retry_after = STORAGE_UNAVAILABLE_RETRY_AFTER_SECONDS
    elif error is not None and is_transient(error):
        status_code, code, message = 503, "database_busy", DATABASE_BUSY_MESSAGE
        retry_after = DATABASE_BUSY_RETRY_AFTER_SECONDS
    else:
        return None
    logger.warning("%s: %s", code, error)
    return JsonResponse(
        {"code": code, "message": message},
        status=status_code,
        headers={"Retry-After": str(retry_after)},
    )


def _application_error_response(error: ApplicationError) -> Response:
    body = {"code": error.code, "message": error.message, **error.extra}
    return Response(body, status=error.status_code)


def _validation_error_response(error: exceptions.ValidationError) -> Response:
    detail = error.detail
    if isinstance(detail, dict):
        fields = _field_messages(detail)
        names = ", ".join(sorted(fields))
        message = f"Invalid input in: {names}."
        non_field = detail.get("non_field_errors")
        if non_field and len(detail) == 1:
            message, fields = str(non_field[0]), None
        body = {"code": "validation_error", "message": message}
        if fields:
            body["fields"] = fields
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    messages = _field_messages(detail)
    return Response(
        {"code": _first_code(detail), "message": " ".join(messages)},
        status=status.HTTP_400_BAD_REQUEST,
    )


def exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    """Turn every handled error into `{"code", "message", ...}` with the right status."""
    if isinstance(exc, ApplicationError):
        return _application_error_response(exc)
    storage_response = storage_error_response(exc)
    if storage_response is not None:
        return storage_response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, exceptions.ValidationError):
        return _validation_error_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(detail, dict):
        code = detail.get("code", _first_code(detail))
        message = detail.get("detail", " ".join(map(str, detail.values())))
        response.data = {"code": str(code), "message": str(message)}
    else:
        response.data = {"code": _first_code(detail), "message": str(detail)}
    return response


API_PATH = "/api/v1"


def _error_view(
    default: Callable[..., HttpResponse], status_code: int, code: str, message: str
) -> Callable[..., HttpResponse]:
    """A Django error view: the JSON error shape under /api/v1, `default` elsewhere."""

    def error_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        path = request.path_info
        if path == API_PATH or path.startswith(f"{API_PATH}/"):
            return JsonResponse({"code": code, "message": message}, status=status_code)
        return default(request, *args, **kwargs)

    return error_view


bad_request = _error_view(defaults.bad_request, 400, "bad_request", "The request is malformed.")
permission_denied = _error_view(
    defaults.permission_denied,
    403,
    "permission_denied",
    "You do not have permission to perform this action.",
)
page_not_found = _error_view(
    defaults.page_not_found, 404, "not_found", "No endpoint matches this path."
)
_unexpected_error = _error_view(
    defaults.server_error, 500, "server_error", "A server error occurred; try again later."
)


def server_error(request: HttpRequest) -> HttpResponse:
    """The error view of an exception nothing handled: a full disk or failed storage as
    `storage_error_response` answers it, anything else as a 500."""
    response = storage_error_response(sys.exception())
    return _unexpected_error(request) if response is None else response
