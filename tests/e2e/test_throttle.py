"""The login throttle holds across gunicorn's worker processes, as `make run` starts them."""

import json

from tests.support.client import API

ATTEMPTS = 25
# REST_FRAMEWORK's DEFAULT_THROTTLE_RATES["auth"]: 10/min.
ALLOWED = 10


def test_ten_login_attempts_a_minute_get_through_whichever_worker_answers(server):
    client = server.client()
    guess = {"username": "e2e", "password": "a wrong guess"}

    statuses = [client.request("POST", f"{API}/auth/token", body=guess)[0] for _ in range(ATTEMPTS)]

    assert statuses == [401] * ALLOWED + [429] * (ATTEMPTS - ALLOWED)
    _, throttled = client.request("POST", f"{API}/auth/token", body=guess)
    assert json.loads(throttled)["code"] == "throttled"
