"""`manage.py serve`: the roles, their ports, the recorder's routes, the Celery roles' HTTP."""

import urllib.error
import urllib.request
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.urls import Resolver404, resolve

from lucid.management.commands.serve import ROLES, role_port
from lucid.role_http import role_http_start
from tests.support.ports import free_port

CELERY_ROLES = sorted(role for role, spec in ROLES.items() if spec.needs_broker)
SESSION = f"/api/v1/sessions/{uuid.uuid4()}"
RECORDER_ROUTES = {
    "/api/v1/auth/token": "token-obtain",
    "/api/v1/auth/token/refresh": "token-refresh",
    "/api/v1/sessions": "session-list",
    SESSION: "session-detail",
    f"{SESSION}/start": "session-start",
    f"{SESSION}/stop": "session-stop",
    f"{SESSION}/chunks": "chunk-list",
    f"{SESSION}/chunks/7": "chunk-detail",
    f"{SESSION}/stream": "session-stream",
    f"{SESSION}/pipeline": "pipeline",
    "/health": "health",
    "/metrics": "metrics",
}
API_ONLY_ROUTES = [
    "/admin/",
    "/admin/sessions_app/session/",
    "/api/docs",
    "/api/schema",
    "/api/v1/audit",
    f"{SESSION}/chunks/7/download",
    f"{SESSION}/recording",
    f"{SESSION}/manifest",
]


def test_a_role_takes_its_secret_key_from_a_file(monkeypatch, tmp_path, settings):
    key_file = tmp_path / "django_secret_key"
    key_file.write_text("k" * 50)
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setenv("DJANGO_SECRET_KEY_FILE", str(key_file))
    # Without a broker the role stops at the next check instead of becoming a Celery worker.
    settings.CELERY_TASK_ALWAYS_EAGER = True

    with pytest.raises(CommandError) as refused:
        call_command("serve", "processor")

    assert "CELERY_BROKER_URL" in str(refused.value), "the role refused its key file"


def test_the_celery_roles_are_the_workers_and_beat():
    assert CELERY_ROLES == ["pipeline", "processor", "storage"]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_a_role_port_is_the_original_design_s_without_an_override(role, monkeypatch):
    monkeypatch.delenv(f"LUCID_{role.upper()}_PORT", raising=False)

    assert role_port(role) == ROLES[role].port


def test_the_original_design_s_ports():
    ports = {role: spec.port for role, spec in ROLES.items()}

    assert ports == {
        "api": 8080,
        "storage": 8081,
        "pipeline": 8082,
        "recorder": 8083,
        "processor": 8084,
    }


@pytest.mark.parametrize("role", sorted(ROLES))
def test_a_role_port_honours_its_variable(role, monkeypatch):
    monkeypatch.setenv(f"LUCID_{role.upper()}_PORT", "18123")

    assert role_port(role) == 18123


def test_a_role_port_variable_moves_only_that_role(monkeypatch):
    monkeypatch.setenv("LUCID_RECORDER_PORT", "18123")
    monkeypatch.delenv("LUCID_API_PORT", raising=False)

    assert role_port("api") == 8080


@pytest.mark.parametrize(("path", "name"), RECORDER_ROUTES.items())
def test_the_recorder_serves_what_recorders_use(path, name):
    assert resolve(path, urlconf="lucid.urls_recorder").url_name == name


@pytest.mark.parametrize("path", API_ONLY_ROUTES)
def test_the_recorder_does_not_serve_the_admin_downloads_or_docs(path):
    with pytest.raises(Resolver404):
        resolve(path, urlconf="lucid.urls_recorder")


@pytest.mark.parametrize("path", API_ONLY_ROUTES)
def test_the_api_serves_what_the_recorder_does_not(path):
    assert resolve(path, urlconf="lucid.urls")


@pytest.fixture
def role_http():
    port = free_port()
    server = role_http_start(host="127.0.0.1", port=port)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


@pytest.mark.django_db(transaction=True)
def test_the_celery_roles_http_answers_health(role_http):
    status, content_type, body = _get(f"{role_http}/health")

    assert (status, content_type) == (200, "application/json")
    assert b'"status": "ok"' in body
    assert b'"database": "ok"' in body


@pytest.mark.django_db(transaction=True)
def test_the_celery_roles_http_answers_metrics(role_http):
    status, content_type, body = _get(f"{role_http}/metrics")

    assert status == 200
    assert content_type.startswith("text/plain")
    assert b"lucid_bytes_received_total" in body
    assert b'lucid_chunks{status="stored"}' in body


def test_the_celery_roles_http_answers_404_elsewhere(role_http):
    status, _, body = _get(f"{role_http}/admin/")

    assert status == 404
    assert b"not_found" in body
