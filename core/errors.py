"""The application's error family: services raise these, the API maps them to HTTP."""

from typing import Any


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
