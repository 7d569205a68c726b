"""Request bodies are JSON, as the contract says: a form is refused with a clear 415, on every
operation whose body the schema documents as JSON (and with it, the 415)."""

import pytest
from rest_framework.test import APIClient

from sessions_app.models import Session
from tests.factories import SessionFactory

FORMS = {
    "application/x-www-form-urlencoded": "name=from+a+form",
    "multipart/form-data; boundary=B": (
        '--B\r\nContent-Disposition: form-data; name="name"\r\n\r\nfrom a form\r\n--B--\r\n'
    ),
}


@pytest.mark.parametrize("content_type", sorted(FORMS))
def test_a_form_body_is_refused_as_an_unsupported_media_type(
    api_client: APIClient, content_type: str
) -> None:
    response = api_client.generic(
        "POST", "/api/v1/sessions", FORMS[content_type], content_type=content_type
    )

    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/token/refresh"),
        ("PUT", "/api/v1/sessions/{id}"),
        ("PATCH", "/api/v1/sessions/{id}"),
    ],
)
def test_every_json_body_refuses_a_form(api_client: APIClient, user, method, path) -> None:
    session = SessionFactory(owner=user, name="before")
    content_type = "application/x-www-form-urlencoded"
    form = FORMS[content_type]

    response = api_client.generic(
        method, path.format(id=session.pk), form, content_type=content_type
    )

    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    session.refresh_from_db()
    assert session.name == "before"
