"""The login throttle counts the attempts of every process: gunicorn's workers share its cache."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from core.api.views import TokenObtainView
from tests.support.processes import manage

pytestmark = pytest.mark.django_db

ADDRESS = "192.0.2.7"
# REST_FRAMEWORK's DEFAULT_THROTTLE_RATES["auth"]: 10/min.
ALLOWED = 10
SIMULTANEOUS_ATTEMPTS = 24
ATTEMPTS_IN_ANOTHER_PROCESS = f"""
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from core.api.views import TokenObtainView

view = TokenObtainView()
request = RequestFactory().post("/api/v1/auth/token", REMOTE_ADDR="{ADDRESS}")
request.user = AnonymousUser()
print(sum(view.get_throttles()[0].allow_request(request, view) for _ in range({ALLOWED})))
"""


def test_login_attempts_made_by_another_process_count_here(anonymous_client):
    other = manage(
        "shell",
        "--verbosity=0",
        "--command",
        ATTEMPTS_IN_ANOTHER_PROCESS,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "lucid.settings"},
    )
    assert other.stdout.strip() == str(ALLOWED), other.stderr

    response = anonymous_client.post(
        "/api/v1/auth/token", {"username": "a", "password": "b"}, REMOTE_ADDR=ADDRESS
    )

    assert (response.status_code, response.json()["code"]) == (429, "throttled")


def test_simultaneous_login_attempts_get_through_no_more_than_the_limit():
    view = TokenObtainView()
    request = RequestFactory().post("/api/v1/auth/token", REMOTE_ADDR="192.0.2.8")
    request.user = AnonymousUser()
    start = threading.Barrier(SIMULTANEOUS_ATTEMPTS)

    def attempt() -> bool:
        throttle = view.get_throttles()[0]
        start.wait()
        return throttle.allow_request(request, view)

    with ThreadPoolExecutor(max_workers=SIMULTANEOUS_ATTEMPTS) as pool:
        allowed = [pool.submit(attempt) for _ in range(SIMULTANEOUS_ATTEMPTS)]

    assert sum(future.result() for future in allowed) == ALLOWED
