"""OpenAPI pieces every app's views share: the error body, the error responses and the
`Token` scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
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
    415: "`unsupported_media_type`: the body is not JSON; send it with "
    "`Content-Type: application/json`.",
    416: "The requested range is not satisfiable.",
    429: "`throttled`: too many attempts from this client address; `Retry-After` says when to "
    "try again.",
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


def error_responses(*statuses: int, authenticated: bool = True) -> dict[int, OpenApiResponse]:
    """Schema responses for the given error statuses, plus 401 and 403 which every route that
    needs credentials (`authenticated`) has."""
    wanted = sorted({*statuses, *((401, 403) if authenticated else ())})
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in wanted
    }


def json_bodies_refuse_other_media_types(result: dict, generator, request, public) -> dict:
    """Document the 415 of every operation whose body is JSON: a form or any other body is
    refused before the view runs, so no view lists it."""
    error = {"$ref": "#/components/schemas/Error"}
    for operations in result["paths"].values():
        for operation in operations.values():
            if set(operation.get("requestBody", {}).get("content", ())) == {"application/json"}:
                refused = {
                    "content": {"application/json": {"schema": error}},
                    "description": ERROR_DESCRIPTIONS[415],
                }
                operation["responses"] = dict(
                    sorted({**operation["responses"], "415": refused}.items())
                )
    return result


def paths_without_trailing_slash(result: dict, generator, request, public) -> dict:
    """Publish paths as the contract writes them: `/api/v1/sessions/{id}`, no trailing slash."""
    result["paths"] = {
        (path.rstrip("/") or "/"): operations for path, operations in result["paths"].items()
    }
    return result


class TokenScheme(OpenApiAuthenticationExtension):
    """DRF's `Authorization: Token <key>`: an API key in that header, whose value carries the
    prefix (OpenAPI's `http` schemes name only registered ones such as Bearer)."""

    target_class = "rest_framework.authentication.TokenAuthentication"
    name = "tokenAuth"
    match_subclasses = True

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "A long-lived key from `manage.py issue_token <username>` (a recorder "
                "machine's), sent as `Authorization: Token <key>`: the header's value is the "
                "word `Token`, one space and the key. In Swagger UI's Authorize dialog enter "
                "`Token <key>`; with an openapi-python-client client, "
                '`AuthenticatedClient(base_url, token=key, prefix="Token")`.'
            ),
        }
