"""OpenAPI pieces every app's views share: the error body and the error responses."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    400: "Invalid input; `fields` names the offending fields.",
    401: "No valid credentials.",
    403: "Not allowed.",
    404: "No such resource (an unknown or malformed id).",
    409: "Conflicts with the current state; `status` names it where it applies.",
    411: "The body was sent with neither a Content-Length nor chunked transfer coding.",
    413: "The body is larger than the session's chunk size.",
    416: "The requested range is not satisfiable.",
    500: "A server error; `chunk_damaged` (with the chunk's `sequence`) when a chunk's kept "
    "bytes no longer match the sha256 recorded for them: none of them were sent.",
    503: "`storage_unavailable`: storage is read-only, missing or unreachable; `database_busy`: "
    "the database kept aborting the change for conflicting ones. Nothing was acknowledged; "
    "`Retry-After` says when to try again.",
    507: "`insufficient_storage`: a disk or quota is full; nothing was acknowledged. Free space "
    "(or run cleanup), then retry after `Retry-After` seconds.",
}


class ErrorSerializer(serializers.Serializer):
    """Every API error: a message, a stable code and, for validation errors, the fields."""

    code = serializers.CharField(help_text="Stable machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field name to its error messages.",
    )
    status = serializers.CharField(required=False, help_text="The resource's current status.")
    sequence = serializers.IntegerField(
        required=False, help_text="The damaged chunk's sequence (`chunk_damaged`)."
    )


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema responses for the given error statuses, plus 401 and 403 which every route has."""
    wanted = sorted({401, 403, *statuses})
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in wanted
    }


def paths_without_trailing_slash(result: dict, generator, request, public) -> dict:
    """Publish paths as the contract writes them: `/api/v1/sessions/{id}`, no trailing slash."""
    result["paths"] = {
        (path.rstrip("/") or "/"): operations for path, operations in result["paths"].items()
    }
    return result
