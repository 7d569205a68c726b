"""The OpenAPI schema: valid OpenAPI 3, complete for every route, and its docs pages."""

from pathlib import Path

import pytest
from openapi_spec_validator import validate

from sessions_app.fields import SESSION_API_FIELDS

pytestmark = pytest.mark.django_db
PUBLISHED_SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"

DOCUMENTED = {
    ("/api/v1/auth/token", "post"),
    ("/api/v1/auth/token/refresh", "post"),
    ("/api/v1/sessions", "get"),
    ("/api/v1/sessions", "post"),
    ("/api/v1/sessions/{id}", "get"),
    ("/api/v1/sessions/{id}", "put"),
    ("/api/v1/sessions/{id}", "patch"),
    ("/api/v1/sessions/{id}", "delete"),
    ("/api/v1/sessions/{id}/start", "post"),
    ("/api/v1/sessions/{id}/stop", "post"),
    ("/api/v1/sessions/{id}/pause", "post"),
    ("/api/v1/sessions/{id}/resume", "post"),
}


@pytest.fixture
def schema(anonymous_client) -> dict:
    response = anonymous_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi_3(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_schema_documents_every_route(schema):
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations >= DOCUMENTED


def test_schema_documents_the_auth_schemes(schema):
    schemes = schema["components"]["securitySchemes"]
    kinds = {(s["type"], s.get("scheme"), s.get("in")) for s in schemes.values()}
    assert ("http", "bearer", None) in kinds
    assert ("apiKey", None, "header") in kinds
    assert ("apiKey", None, "cookie") in kinds


def test_schema_documents_error_responses(schema):
    sessions = schema["paths"]["/api/v1/sessions/{id}/start"]["post"]["responses"]
    assert {"200", "401", "404", "409"} <= set(sessions)
    error = schema["components"]["schemas"]["Error"]
    assert {"code", "message"} <= set(error["required"])


def test_schema_documents_the_session_fields(schema):
    fields = set(schema["components"]["schemas"]["Session"]["properties"])
    assert fields == set(SESSION_API_FIELDS)


def test_list_parameters_are_documented(schema):
    names = {p["name"] for p in schema["paths"]["/api/v1/sessions"]["get"]["parameters"]}
    assert {
        "status",
        "owner",
        "host",
        "created_after",
        "created_before",
        "search",
        "ordering",
        "cursor",
        "page_size",
    } <= names


@pytest.mark.parametrize("path", ["/api/docs", "/api/redoc"])
def test_docs_pages_render(anonymous_client, path):
    response = anonymous_client.get(path)

    assert response.status_code == 200
    assert b"/api/schema" in response.content


def test_the_served_schema_is_the_published_one_byte_for_byte(anonymous_client):
    served = anonymous_client.get("/api/schema").content

    assert served == PUBLISHED_SCHEMA.read_bytes(), (
        "The API contract changed. If that is intended, publish it: "
        "python manage.py spectacular --file docs/openapi.yaml"
    )
