"""Settings a deployment gives through the environment, computed in a process of their own:
secrets read from files (Docker secrets), the TLS proxy's scheme, the worker pool."""

import pytest

from tests.support.settings_process import settings_value

PASSWORD = "p@ss/w:rd"


def _settings(tmp_path, names: list[str], **environment: str) -> dict:
    """The named settings of a fresh process given only `environment`."""
    expression = f"{{name: getattr(s, name, None) for name in {names!r}}}"
    return settings_value(expression, storage=tmp_path, **environment)


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "database_password"
    path.write_text(f"{PASSWORD}\n")
    return path


def test_the_database_password_file_gives_the_password_the_url_does_not_carry(
    tmp_path, password_file
):
    computed = _settings(
        tmp_path,
        ["DATABASES"],
        DATABASE_URL="postgres://lucid@db:5432/lucid",
        DATABASE_PASSWORD_FILE=str(password_file),
    )

    database = computed["DATABASES"]["default"]
    assert database["PASSWORD"] == PASSWORD
    assert (database["USER"], database["HOST"], database["PORT"], database["NAME"]) == (
        "lucid",
        "db",
        5432,
        "lucid",
    )


def test_the_database_password_file_wins_over_a_password_in_the_url(tmp_path, password_file):
    computed = _settings(
        tmp_path,
        ["DATABASES"],
        DATABASE_URL="postgres://lucid:old@db:5432/lucid",
        DATABASE_PASSWORD_FILE=str(password_file),
    )

    assert computed["DATABASES"]["default"]["PASSWORD"] == PASSWORD


def test_the_secret_key_is_read_from_the_file_django_secret_key_file_names(tmp_path):
    key_file = tmp_path / "django_secret_key"
    key_file.write_text("k" * 50 + "\n")

    computed = _settings(tmp_path, ["SECRET_KEY"], DJANGO_SECRET_KEY_FILE=str(key_file))

    assert computed["SECRET_KEY"] == "k" * 50


def test_x_forwarded_proto_is_ignored_unless_a_trusted_proxy_sets_it(tmp_path):
    assert _settings(tmp_path, ["SECURE_PROXY_SSL_HEADER"])["SECURE_PROXY_SSL_HEADER"] is None


def test_x_forwarded_proto_https_makes_a_request_secure_behind_the_tls_proxy(tmp_path):
    computed = _settings(
        tmp_path, ["SECURE_PROXY_SSL_HEADER"], LUCID_TRUST_X_FORWARDED_PROTO="true"
    )

    assert computed["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_a_worker_runs_as_many_pool_processes_as_it_is_told(tmp_path):
    computed = _settings(tmp_path, ["CELERY_WORKER_CONCURRENCY"], LUCID_WORKER_CONCURRENCY="2")

    assert computed["CELERY_WORKER_CONCURRENCY"] == 2


def test_a_worker_runs_one_pool_process_per_cpu_unless_told(tmp_path):
    assert _settings(tmp_path, ["CELERY_WORKER_CONCURRENCY"])["CELERY_WORKER_CONCURRENCY"] is None
