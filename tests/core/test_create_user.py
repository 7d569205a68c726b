"""`manage.py create_user NAME --role ROLE [--token]`: identities without a Django shell."""

import getpass
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from core.roles import user_roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "password"
    path.write_text(f"{PASSWORD}\n")
    return path


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _create_user(*args: str) -> str:
    out = io.StringIO()
    call_command("create_user", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


@pytest.mark.parametrize("role", ["recorder", "operator", "auditor"])
def test_create_user_puts_the_user_in_its_role(role, password_file):
    _create_user("someone", "--role", role, "--password-file", str(password_file))

    assert user_roles(get_user_model().objects.get(username="someone")) == {role}


def test_a_recorder_created_with_token_gets_a_key_that_records_as_itself():
    key = _create_user("recorder-7", "--role", "recorder", "--token")

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post("/api/v1/sessions", {"name": "from recorder"}, format="json")
    assert response.status_code == 201
    assert response.json()["owner"] == "recorder-7"


def test_a_recorder_has_no_password_and_no_console():
    _create_user("recorder-7", "--role", "recorder")

    recorder = get_user_model().objects.get(username="recorder-7")
    assert not recorder.has_usable_password()
    assert not recorder.is_staff


def test_an_operator_logs_into_the_console_with_the_password_from_the_file(password_file):
    _create_user("olga", "--role", "operator", "--password-file", str(password_file))

    browser = Client()
    assert browser.login(username="olga", password=PASSWORD)
    assert browser.get("/admin/").status_code == 200


def test_an_auditor_is_asked_for_the_password_twice_at_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr(getpass, "getpass", lambda prompt: PASSWORD)

    _create_user("audrey", "--role", "auditor")

    assert get_user_model().objects.get(username="audrey").check_password(PASSWORD)


def test_two_different_passwords_at_the_prompt_create_nobody(monkeypatch):
    answers = iter([PASSWORD, "something else entirely"])
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))

    with pytest.raises(CommandError, match="differ"):
        _create_user("audrey", "--role", "auditor")
    assert not get_user_model().objects.filter(username="audrey").exists()


def test_an_operator_without_a_password_off_a_terminal_is_refused_with_advice(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO())

    with pytest.raises(CommandError, match="--password-file"):
        _create_user("olga", "--role", "operator")
    assert not get_user_model().objects.filter(username="olga").exists()


def test_a_weak_password_is_refused(tmp_path):
    weak = tmp_path / "password"
    weak.write_text("password\n")

    with pytest.raises(CommandError, match="password is refused"):
        _create_user("olga", "--role", "operator", "--password-file", str(weak))
    assert not get_user_model().objects.filter(username="olga").exists()


def test_an_existing_name_is_refused_saying_what_to_do():
    UserFactory(username="recorder-7", roles=["recorder"])

    with pytest.raises(CommandError, match="exists already.*issue_token recorder-7"):
        _create_user("recorder-7", "--role", "recorder")


def test_an_unknown_role_is_refused_naming_the_roles():
    with pytest.raises(CommandError, match="Unknown role 'admin'.*recorder, operator, auditor"):
        _create_user("root", "--role", "admin")
    assert not get_user_model().objects.filter(username="root").exists()


def test_a_name_django_does_not_allow_is_refused():
    with pytest.raises(CommandError, match="name 'two words' is not allowed"):
        _create_user("two words", "--role", "recorder")


def test_issue_token_for_an_unknown_user_points_to_create_user():
    with pytest.raises(CommandError, match="create_user ghost --role recorder --token"):
        call_command("issue_token", "ghost")
