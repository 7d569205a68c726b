"""`.env` read at startup (the environment wins over it), and the JWT lifetimes it may set."""

import shutil
import subprocess
import sys

import pytest

from tests.support.processes import REPO
from tests.support.settings_process import settings_loaded, settings_value

SETTINGS = (
    "{'page_size': s.LUCID_PAGE_SIZE, "
    "'access': s.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'].total_seconds(), "
    "'refresh': s.SIMPLE_JWT['REFRESH_TOKEN_LIFETIME'].total_seconds()}"
)


def _start(tmp_path, project=REPO, **environment: str) -> subprocess.CompletedProcess:
    """A fresh process of `project` loading the settings, given only `environment`."""
    return settings_loaded(SETTINGS, storage=tmp_path, project=project, **environment)


def _settings(tmp_path, project=REPO, **environment: str) -> dict:
    return settings_value(SETTINGS, storage=tmp_path, project=project, **environment)


@pytest.fixture
def env_file(tmp_path):
    path = tmp_path / "lucid.env"
    path.write_text("# tuned\nLUCID_PAGE_SIZE=7\nexport LUCID_ACCESS_TOKEN_MINUTES='15'\n")
    return path


def test_a_dot_env_beside_manage_py_is_read_at_startup(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(REPO / "lucid", project / "lucid", ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".env").write_text("LUCID_PAGE_SIZE=7\n")

    assert _settings(tmp_path, project)["page_size"] == 7


def test_lucid_env_file_names_the_file_to_read(tmp_path, env_file):
    computed = _settings(tmp_path, LUCID_ENV_FILE=str(env_file))

    assert (computed["page_size"], computed["access"]) == (7, 15 * 60)


def test_the_environment_wins_over_the_env_file(tmp_path, env_file):
    computed = _settings(tmp_path, LUCID_ENV_FILE=str(env_file), LUCID_PAGE_SIZE="9")

    assert computed["page_size"] == 9


def test_a_missing_lucid_env_file_stops_startup_naming_it(tmp_path):
    started = _start(tmp_path, LUCID_ENV_FILE=str(tmp_path / "absent.env"))

    assert started.returncode != 0
    assert "absent.env" in started.stderr and "does not exist" in started.stderr


def test_gunicorn_reads_the_env_file_too(tmp_path):
    (tmp_path / "lucid.env").write_text("GUNICORN_WORKERS=3\n")
    code = "import runpy; print(runpy.run_path('lucid/gunicorn.conf.py')['workers'])"

    started = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "LUCID_ENV_FILE": str(tmp_path / "lucid.env"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert started.stdout.strip() == "3"


def test_token_lifetimes_come_from_the_environment(tmp_path):
    computed = _settings(tmp_path, LUCID_ACCESS_TOKEN_MINUTES="15", LUCID_REFRESH_TOKEN_HOURS="48")

    assert (computed["access"], computed["refresh"]) == (15 * 60, 48 * 3600)


def test_a_token_lifetime_below_one_stops_startup_naming_it(tmp_path):
    started = _start(tmp_path, LUCID_ACCESS_TOKEN_MINUTES="0")

    assert started.returncode != 0
    assert "LUCID_ACCESS_TOKEN_MINUTES" in started.stderr
