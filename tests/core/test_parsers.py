"""Request bodies are JSON, as the contract says: a form is refused with a clear 415."""

import pytest
from rest_framework.test import APIClient

from sessions_app.models import Session

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
