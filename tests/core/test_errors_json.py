"""Every error under /api/v1 has the JSON error shape, the ones Django answers itself included.

Also the URLconf of the tests that need a view failing unexpectedly: the service's routes, a
Django view and a DRF view that raise, and the service's error handlers.
"""

import pytest
from django.test import Client
from django.urls import path
from rest_framework.request import Request
from rest_framework.test import APIClient
from rest_framework.views import APIView

from lucid import urls as service_urls

pytestmark = pytest.mark.django_db

FAILING_URLS = __name__


def _failing_view(request):
    raise RuntimeError("an unexpected failure")


class FailingApiView(APIView):
    def get(self, request: Request):
        raise RuntimeError("an unexpected failure")


urlpatterns = [
    path("api/v1/failing", _failing_view),
    path("api/v1/failing-drf", FailingApiView.as_view()),
    path("failing", _failing_view),
    *service_urls.urlpatterns,
]
handler400 = service_urls.handler400
handler403 = service_urls.handler403
handler404 = service_urls.handler404
handler500 = service_urls.handler500


def _assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert body["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sessions/{session}/chunks/-1",
        "/api/v1/sessions/{session}/chunks/0/nothing",
        "/api/v1/no-such-thing",
        "/api/v1",
        "/api/v1/",
    ],
)
def test_an_unmatched_route_under_the_api_is_a_json_404(api_client, recording, path):
    response = api_client.get(path.format(session=recording.id))

    _assert_json_error(response, 404, "not_found")


def test_an_unmatched_route_is_a_json_404_without_credentials_too(anonymous_client):
    _assert_json_error(anonymous_client.put("/api/v1/no-such-thing"), 404, "not_found")


@pytest.mark.urls("lucid.urls_recorder")
def test_the_recorder_role_answers_an_unmatched_route_with_a_json_404(api_client):
    _assert_json_error(api_client.get("/api/v1/sessions/x/chunks/-1"), 404, "not_found")


@pytest.mark.parametrize("path", ["/no-such-thing", "/api/v1x", "/admin-no-such-thing"])
def test_an_unmatched_route_outside_the_api_keeps_djangos_page(anonymous_client, path):
    response = anonymous_client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("method", "path"),
    [("patch", "/chunks/0"), ("delete", "/stream"), ("get", "/stream"), ("put", "/stop")],
)
def test_a_method_a_route_does_not_take_is_a_json_405(api_client, recording, method, path):
    response = getattr(api_client, method)(f"/api/v1/sessions/{recording.id}{path}")

    _assert_json_error(response, 405, "method_not_allowed")


@pytest.mark.urls(FAILING_URLS)
@pytest.mark.parametrize("path", ["/api/v1/failing", "/api/v1/failing-drf"])
def test_an_unexpected_failure_under_the_api_is_a_json_500(user, path):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)

    _assert_json_error(client.get(path), 500, "server_error")


@pytest.mark.urls(FAILING_URLS)
def test_an_unexpected_failure_outside_the_api_keeps_djangos_page():
    response = Client(raise_request_exception=False).get("/failing")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_a_request_django_refuses_under_the_api_is_a_json_400(anonymous_client):
    response = anonymous_client.get("/api/v1/sessions", HTTP_HOST="not-an-allowed-host.example")

    _assert_json_error(response, 400, "bad_request")
