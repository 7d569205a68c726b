"""The OpenAPI schema: valid OpenAPI 3, complete for every route, fit to generate clients from,
and its docs pages, which load nothing from elsewhere (recording networks are often offline)."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from openapi_spec_validator import validate

from sessions_app.fields import SESSION_API_FIELDS
from tests.support.pages import loaded_urls

pytestmark = pytest.mark.django_db
PUBLISHED_SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
DOCS_PAGES = ["/api/docs", "/api/redoc"]
BINARY_BODIES = {
    ("/api/v1/sessions/{session_id}/chunks/{sequence}", "put"),
    ("/api/v1/sessions/{session_id}/stream", "post"),
}

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


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_schema_documents_the_token_scheme_with_its_prefix(schema):
    token = schema["components"]["securitySchemes"]["tokenAuth"]

    assert (token["type"], token["in"], token["name"]) == ("apiKey", "header", "Authorization")
    assert "`Authorization: Token <key>`" in token["description"]


def test_schema_names_its_server(schema):
    assert [server["url"] for server in schema["servers"]] == ["/"]


def test_request_bodies_are_json_and_only_chunk_bodies_are_bytes(schema):
    media_types = {
        (path, method): set(operation["requestBody"]["content"])
        for path, method, operation in _operations(schema)
        if "requestBody" in operation
    }

    assert {key: types for key, types in media_types.items() if key in BINARY_BODIES} == {
        key: {"application/octet-stream"} for key in BINARY_BODIES
    }
    assert {types.pop() for key, types in media_types.items() if key not in BINARY_BODIES} == {
        "application/json"
    }


def test_every_operation_with_a_json_body_documents_its_415(schema):
    with_json_bodies = {
        (path, method)
        for path, method, operation in _operations(schema)
        if set(operation.get("requestBody", {}).get("content", ())) == {"application/json"}
    }
    documenting = {
        (path, method)
        for path, method, operation in _operations(schema)
        if "415" in operation["responses"]
    }

    assert ("/api/v1/sessions", "post") in with_json_bodies
    assert documenting == with_json_bodies


def test_every_documented_api_error_has_the_error_shape(schema):
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    errors = {
        (path, method, status): response.get("content")
        for path, method, operation in _operations(schema)
        if path.startswith("/api/")
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }

    assert errors
    assert {key: content for key, content in errors.items() if content != error} == {}


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/api/v1/auth/token", {"200", "400", "401", "415", "429"}),
        ("/api/v1/auth/token/refresh", {"200", "400", "401", "415"}),
    ],
)
def test_the_token_endpoints_document_their_errors(schema, path, statuses):
    assert set(schema["paths"][path]["post"]["responses"]) == statuses


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


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_render(anonymous_client, path):
    response = anonymous_client.get(path)

    assert response.status_code == 200
    assert b"/api/schema" in response.content


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_load_only_our_own_static_files(anonymous_client, path):
    loaded = loaded_urls(anonymous_client.get(path).content.decode())
    static_prefix = settings.STATIC_URL

    assert any(url.endswith(".js") for url in loaded)
    assert [url for url in loaded if not url.startswith(static_prefix)] == []
    assert [url for url in loaded if finders.find(url.removeprefix(static_prefix)) is None] == []


def test_the_site_root_redirects_to_the_api_docs(anonymous_client):
    response = anonymous_client.get("/")

    assert (response.status_code, response["Location"]) == (302, "/api/docs")


def test_the_served_schema_is_the_published_one_byte_for_byte(anonymous_client):
    served = anonymous_client.get("/api/schema").content

    assert served == PUBLISHED_SCHEMA.read_bytes(), (
        "The API contract changed. If that is intended, publish it: "
        "python manage.py spectacular --file docs/openapi.yaml"
    )
