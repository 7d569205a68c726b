"""Authentication: JWT, recorder API keys, browser sessions, and 401 without credentials."""

import uuid

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/sessions"),
        ("post", "/api/v1/sessions"),
        ("get", "/api/v1/sessions/{id}"),
        ("put", "/api/v1/sessions/{id}"),
        ("patch", "/api/v1/sessions/{id}"),
        ("delete", "/api/v1/sessions/{id}"),
        ("post", "/api/v1/sessions/{id}/start"),
        ("post", "/api/v1/sessions/{id}/stop"),
        ("post", "/api/v1/sessions/{id}/pause"),
        ("post", "/api/v1/sessions/{id}/resume"),
        ("get", f"/api/v1/sessions/{uuid.uuid4()}"),
    ],
)
def test_every_api_route_is_401_without_credentials(anonymous_client, method, path):
    session = SessionFactory()

    response = getattr(anonymous_client, method)(path.format(id=session.id))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.has_header("WWW-Authenticate")


def test_jwt_pair_from_username_and_password_authenticates_requests(anonymous_client):
    UserFactory(username="alice", roles=["auditor"])

    tokens = anonymous_client.post(
        "/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert tokens.status_code == 200
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")

    assert anonymous_client.get("/api/v1/sessions").status_code == 200


def test_jwt_refresh_gives_a_working_access_token(anonymous_client):
    UserFactory(username="alice", roles=["auditor"])
    refresh = anonymous_client.post(
        "/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, format="json"
    ).json()["refresh"]

    response = anonymous_client.post(
        "/api/v1/auth/token/refresh", {"refresh": refresh}, format="json"
    )

    assert response.status_code == 200
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert anonymous_client.get("/api/v1/sessions").status_code == 200


def test_wrong_password_is_401(anonymous_client):
    UserFactory(username="alice", roles=["auditor"])

    response = anonymous_client.post(
        "/api/v1/auth/token", {"username": "alice", "password": "nope"}, format="json"
    )

    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


def test_issue_token_prints_a_key_that_authenticates(capsys):
    UserFactory(username="recorder-7", roles=["recorder"])

    call_command("issue_token", "recorder-7")
    key = capsys.readouterr().out.strip()

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post("/api/v1/sessions", {"name": "from recorder"}, format="json")
    assert response.status_code == 201
    assert response.json()["owner"] == "recorder-7"


def test_issue_token_rotate_revokes_the_old_key(capsys):
    UserFactory(username="recorder-7", roles=["recorder"])
    call_command("issue_token", "recorder-7")
    old = capsys.readouterr().out.strip()

    call_command("issue_token", "recorder-7", "--rotate")
    new = capsys.readouterr().out.strip()

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/v1/sessions").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert client.get("/api/v1/sessions").status_code == 200


def test_browser_session_login_authenticates_the_api():
    UserFactory(username="operator", roles=["operator"])
    client = APIClient(enforce_csrf_checks=True)

    assert client.login(username="operator", password=PASSWORD)
    assert client.get("/api/v1/sessions").status_code == 200


def test_ensure_superuser_creates_it_once(monkeypatch, django_user_model):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "admin@example.test")

    call_command("ensure_superuser")
    call_command("ensure_superuser")

    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("s3cret-pass")


def test_ensure_superuser_reads_the_password_from_the_file_named(
    monkeypatch, django_user_model, tmp_path
):
    password_file = tmp_path / "django_superuser_password"
    password_file.write_text("p@ss/w:rd\n")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD_FILE", str(password_file))

    call_command("ensure_superuser")

    assert django_user_model.objects.get(username="admin").check_password("p@ss/w:rd")


def test_ensure_superuser_without_password_fails(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "admin")
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)

    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command("ensure_superuser")
