"""The Dockerfile and docker-compose.yml, checked against the settings and `manage.py serve`.

No Docker engine runs here: both files are parsed and every name, port, path and command in them
is checked against what the code reads and runs.
"""

import fnmatch
import http.server
import json
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from lucid.management.commands.serve import ROLES

REPO = Path(__file__).resolve().parents[1]
IMAGE = "lucid-session-storage:latest"
SERVICE_ROLES = {
    "lucid-session-api": "api",
    "lucid-session-storage": "storage",
    "lucid-session-pipeline": "pipeline",
    "lucid-session-recorder": "recorder",
    "lucid-session-processor": "processor",
}
DATA_SERVICES = ("postgres", "redis", "mongo")
PATH_VARIABLES = ("LUCID_STORAGE_PATH", "LUCID_CHUNK_STORE_PATH", "LUCID_BACKUP_PATH")
# Files that read the environment of a role's process: settings, gunicorn, Celery, commands.
ENVIRONMENT_READERS = (
    "lucid/settings.py",
    "lucid/gunicorn.conf.py",
    "lucid/celery.py",
    "lucid/role_http.py",
    "core/management/commands/*.py",
    "lucid/management/commands/*.py",
)
ENVIRONMENT_READ = re.compile(
    r"""(?:env_str_or_file|env_str|env_int|env_bool|env_list|os\.environ\.get|os\.environ\.setdefault"""
    r"""|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)


# --- Dockerfile ---------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, arguments in _dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, arguments))
    return stages


def _final_stage(keyword: str) -> list[str]:
    return [arguments for name, arguments in _stages()[-1] if name == keyword]


def _image_environment() -> dict[str, str]:
    environment = {}
    for arguments in _final_stage("ENV"):
        for assignment in shlex.split(arguments):
            name, _, value = assignment.partition("=")
            environment[name] = value
    return environment


def _ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(
        fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.removeprefix("**/"))
        for pattern in patterns
    )


def test_the_image_is_built_in_two_stages_on_python_3_11_slim():
    stages = _stages()
    bases = [stage[0][1].split() for stage in stages]

    assert len(stages) >= 2
    assert all(base[0] == "python:3.11-slim" for base in bases)
    assert bases[0][1:] == ["AS", "builder"]
    copies = _final_stage("COPY")
    assert any(source.startswith("--from=builder /opt/venv") for source in copies)
    assert not any("build-essential" in run for run in _final_stage("RUN"))


def test_the_image_runs_as_a_user_that_is_not_root():
    (user,) = _final_stage("USER")

    assert user.split(":")[0] not in ("root", "0")


def test_the_entrypoint_runs_serve_and_the_default_command_is_a_role():
    (entrypoint,) = _final_stage("ENTRYPOINT")
    (command,) = _final_stage("CMD")

    assert json.loads(entrypoint) == ["python", "manage.py", "serve"]
    assert json.loads(command) == ["api"]
    assert (REPO / "lucid/management/commands/serve.py").is_file()


def test_the_image_holds_every_package_of_the_project():
    copied = {arguments.split()[0] for arguments in _final_stage("COPY")}
    packages = {
        app.split(".")[0]
        for app in settings.INSTALLED_APPS
        if (REPO / app.split(".")[0] / "__init__.py").is_file()
    }

    assert packages <= copied, f"the image lacks {sorted(packages - copied)}"


def test_the_image_build_leaves_no_secret_key_behind():
    (collectstatic,) = [run for run in _final_stage("RUN") if "collectstatic" in run]

    assert "DJANGO_SECRET_KEY=" in collectstatic


def test_every_copied_source_exists_and_is_not_in_dockerignore():
    copies = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "COPY"]
    sources = [
        source
        for arguments in copies
        if not arguments.startswith("--from=")
        for source in shlex.split(arguments)[:-1]
    ]

    assert "requirements.txt" in sources and "manage.py" in sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        assert not _ignored(source), f"COPY {source}: excluded by .dockerignore"


def test_the_static_files_are_collected_when_the_image_is_built():
    assert any("manage.py collectstatic" in run for run in _final_stage("RUN"))
    assert _image_environment()["DJANGO_STATIC_ROOT"].startswith("/app/")


def test_everything_the_image_writes_is_on_a_volume():
    environment = _image_environment()
    (volumes,) = _final_stage("VOLUME")

    assert sorted(json.loads(volumes)) == sorted(environment[name] for name in PATH_VARIABLES)
    assert environment["LUCID_BIND"] == "0.0.0.0"
    assert "PROMETHEUS_MULTIPROC_DIR" not in environment, (
        "a Celery role fails /metrics when PROMETHEUS_MULTIPROC_DIR names a missing directory"
    )


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture(params=[200, 503], ids=["healthy", "unhealthy"])
def health_server(request):
    handler = type("Handler", (_HealthHandler,), {"status": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("port_variable", ["PORT", "LUCID_HEALTH_PORT"])
def test_the_health_check_fails_exactly_when_the_role_port_health_fails(
    health_server, port_variable, tmp_path
):
    (healthcheck,) = _final_stage("HEALTHCHECK")
    command = json.loads(healthcheck.partition("CMD ")[2])
    assert command[:2] == ["python", "-c"]
    role_environment = tmp_path / "environ"
    role_environment.write_bytes(
        f"LUCID_ROLE=x\0{port_variable}={health_server.server_address[1]}\0".encode()
    )
    code = command[2].replace("/proc/1/environ", str(role_environment))

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)

    healthy = health_server.RequestHandlerClass.status == 200
    assert (completed.returncode == 0) == healthy, completed.stderr.decode()


# --- docker-compose.yml -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _variables_read() -> set[str]:
    """Every environment variable the service's processes read, from the source text."""
    names = {f"LUCID_{role.upper()}_PORT" for role in ROLES}
    for pattern in ENVIRONMENT_READERS:
        for path in REPO.glob(pattern):
            for match in ENVIRONMENT_READ.finditer(path.read_text()):
                names.add(match.group(1) or match.group(2))
    return names


def _mounts(service: dict) -> dict[str, str]:
    """Container path -> named volume."""
    return {
        mount.split(":")[1]: mount.split(":")[0]
        for mount in service.get("volumes", [])
        if isinstance(mount, str)
    }


def test_every_role_runs_as_the_service_of_the_original_design(compose):
    roles = {
        name: service["command"]
        for name, service in compose["services"].items()
        if service.get("image") == IMAGE and name != "migrate" and "profiles" not in service
    }

    assert roles == {name: [role] for name, role in SERVICE_ROLES.items()}
    assert sorted(SERVICE_ROLES.values()) == sorted(ROLES)


@pytest.mark.parametrize("name", SERVICE_ROLES)
def test_a_role_publishes_and_checks_the_health_of_its_own_port(compose, name):
    service = compose["services"][name]
    port = ROLES[SERVICE_ROLES[name]].port

    assert service["ports"] == [f"{port}:{port}"]
    assert f"http://127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"])
    assert not {f"LUCID_{role.upper()}_PORT" for role in ROLES} & set(service["environment"])


@pytest.mark.parametrize("name", [*SERVICE_ROLES, "migrate"])
def test_every_variable_a_service_sets_is_one_the_code_reads(compose, name):
    unknown = set(compose["services"][name]["environment"]) - _variables_read()

    assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", SERVICE_ROLES)
def test_a_role_gets_the_original_variables_and_its_secrets_from_the_environment(compose, name):
    environment = compose["services"][name]["environment"]

    required = {"MONGO_URL", "REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY"}
    assert required <= set(environment)
    assert {"LUCID_STORAGE_PATH", "LUCID_CHUNK_STORE_PATH", "LUCID_COMPRESSION_ALGORITHM"} <= set(
        environment
    )
    assert environment["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]


@pytest.mark.parametrize("name", SERVICE_ROLES)
def test_a_role_mounts_its_volumes_exactly_where_its_variables_point(compose, name):
    service = compose["services"][name]
    environment = service["environment"]
    mounts = _mounts(service)

    expected = {environment[variable] for variable in PATH_VARIABLES}
    assert set(mounts) <= expected, f"mounted where no variable points: {set(mounts) - expected}"
    for variable in ("LUCID_STORAGE_PATH", "LUCID_CHUNK_STORE_PATH"):
        assert environment[variable] in mounts, f"{variable} is not on a volume"
    assert set(mounts.values()) <= set(compose["volumes"])


def test_the_storage_role_mounts_the_backups_and_the_paths_match_the_image(compose):
    storage = compose["services"]["lucid-session-storage"]
    image = _image_environment()

    assert _mounts(storage)[storage["environment"]["LUCID_BACKUP_PATH"]] == "backups"
    for variable in PATH_VARIABLES:
        assert storage["environment"][variable] == image[variable]


@pytest.mark.parametrize("name", SERVICE_ROLES)
def test_a_role_has_a_read_only_root_restarts_and_waits_for_the_migration(compose, name):
    service = compose["services"][name]

    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["restart"] == "unless-stopped"
    assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "lucid_net" in service["networks"]


def test_the_migration_runs_once_with_the_image_before_the_roles(compose):
    migrate = compose["services"]["migrate"]

    assert migrate["image"] == IMAGE
    assert "manage.py migrate --noinput" in " ".join(migrate["command"])
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_the_data_services_are_only_on_the_internal_network(compose):
    services = compose["services"]

    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["mongo"]["profiles"] == ["mongodb"]
    assert compose["networks"]["lucid_net"]["internal"] is True
    for name in DATA_SERVICES:
        assert services[name]["networks"] == ["lucid_net"], name
        assert "ports" not in services[name], name
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "unless-stopped", name
