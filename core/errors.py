"""The application's error family: services raise these, the API maps them to HTTP."""

import errno
from typing import Any

from core.db import is_database_full

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class ApplicationError(Exception):
    """A failure the client can act on: a message, a stable code and an HTTP status."""

    status_code = 400
    default_code = "invalid"

    def __init__(
        self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    """Input that breaks a rule; `fields` names the offending fields."""

    default_code = "validation_error"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, code=None):
        super().__init__(message, code=code, extra={"fields": fields} if fields else None)


class NotFound(ApplicationError):
    status_code = 404
    default_code = "not_found"


class Conflict(ApplicationError):
    """The request contradicts the resource's current state."""

    status_code = 409
    default_code = "conflict"


class InvalidTransition(Conflict):
    """A recording or pipeline state change that its current state does not allow."""

    default_code = "invalid_transition"

    def __init__(self, *, action: str, status: str):
        super().__init__(
            f"Cannot {action}: the current status is '{status}'.",
            extra={"status": status},
        )


class PayloadTooLarge(ApplicationError):
    status_code = 413
    default_code = "payload_too_large"


class StorageUnavailable(Exception):
    """A store of recorded bytes failed or cannot be reached: a 503, try again later."""


class StorageFull(StorageUnavailable):
    """No space or quota is left where recorded bytes are written: a 507 until space is freed."""


def is_storage_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from, says a disk or quota is full: a chunk
    store's, the spool's or the database's."""
    while error is not None:
        if (
            isinstance(error, StorageFull)
            or (isinstance(error, OSError) and error.errno in FULL_ERRNOS)
            or is_database_full(error)
        ):
            return True
        error = error.__cause__
    return False
