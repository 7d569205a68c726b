"""JWT errors that say what is wrong and what to do, and the tokens' lifetimes."""

import base64
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
AN_HOUR_AGO = timezone.now() - timedelta(hours=1)


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _expired(token_class: type[AccessToken] | type[RefreshToken]) -> str:
    token = token_class.for_user(UserFactory(username="alice", roles=["auditor"]))
    token.set_exp(from_time=AN_HOUR_AGO, lifetime=timedelta(minutes=5))
    return str(token)


def test_an_expired_access_token_is_401_token_expired_saying_when_and_where_to_renew(
    anonymous_client,
):
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Bearer {_expired(AccessToken)}")

    response = anonymous_client.get("/api/v1/sessions")

    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")
    body = response.json()
    assert body["code"] == "token_expired"
    expired_at = (AN_HOUR_AGO + timedelta(minutes=5)).replace(microsecond=0).isoformat()
    assert body["message"].startswith(f"The access token expired at {expired_at};")
    assert "POST /api/v1/auth/token/refresh" in body["message"]


def test_an_access_token_accepted_before_is_401_token_expired_once_its_time_is_up(
    anonymous_client,
):
    token = AccessToken.for_user(UserFactory(username="alice", roles=["auditor"]))
    token.set_exp(from_time=timezone.now(), lifetime=timedelta(seconds=2))
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert anonymous_client.get("/api/v1/sessions").status_code == 200

    time.sleep(max(token["exp"] - time.time(), 0) + 0.1)

    response = anonymous_client.get("/api/v1/sessions")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_an_expired_refresh_token_is_401_token_expired_pointing_to_a_new_login(anonymous_client):
    response = anonymous_client.post(
        "/api/v1/auth/token/refresh", {"refresh": _expired(RefreshToken)}, format="json"
    )

    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "token_expired"
    assert body["message"].startswith("The refresh token expired at ")
    assert "POST /api/v1/auth/token with username and password" in body["message"]


def test_a_refresh_token_sent_as_bearer_is_401_token_not_valid_saying_why(anonymous_client):
    refresh = RefreshToken.for_user(UserFactory(username="alice", roles=["auditor"]))
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh}")

    response = anonymous_client.get("/api/v1/sessions")

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert "wrong type" in response.json()["message"]


def test_a_garbage_bearer_token_is_401_token_not_valid_pointing_to_a_new_one(anonymous_client):
    anonymous_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    body = anonymous_client.get("/api/v1/sessions").json()

    assert body["code"] == "token_not_valid"
    assert body["message"].startswith("The Bearer token is not a valid access token")
    assert "POST /api/v1/auth/token" in body["message"]


def test_tokens_last_5_minutes_and_24_hours_by_default(anonymous_client):
    UserFactory(username="alice", roles=["auditor"])

    pair = anonymous_client.post(
        "/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, format="json"
    ).json()

    access, refresh = _claims(pair["access"]), _claims(pair["refresh"])
    assert access["exp"] - access["iat"] == 5 * 60
    assert refresh["exp"] - refresh["iat"] == 24 * 3600
