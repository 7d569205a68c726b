"""The Dockerfile and docker-compose.yml, checked against the settings and `manage.py serve`.

No Docker engine runs here: both files are parsed and every name, port, path and command in them
is checked against what the code reads and runs.
"""

import datetime
import fnmatch
import http.client
import http.server
import json
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from django.conf import settings

from lucid.management.commands.serve import ROLES
from tests.support.ports import free_ports, listening, wait_until_answering
from tests.support.processes import ProcessGroup

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


def test_the_image_declares_no_volume_that_would_be_left_anonymous():
    assert not _final_stage("VOLUME")


def test_the_image_listens_on_every_interface_and_leaves_the_metrics_directory_unset():
    environment = _image_environment()

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
                if match.group(0).startswith("env_str_or_file"):
                    names.add(f"{match.group(1)}_FILE")
    return names


def _published(service: dict) -> list[tuple[str, str, int]]:
    """(host address, host port, container port) of each published port."""
    part = r"((?:\$\{[^}]*\}|[^:$])+)"
    published = []
    for mapping in service.get("ports", []):
        address, host_port, container_port = re.fullmatch(rf"{part}:{part}:(\d+)", mapping).groups()
        published.append((address, host_port, int(container_port)))
    return published


def _container_ports(service: dict) -> list[int]:
    """The ports a service opens: published or exposed to its networks only."""
    exposed = [int(port) for port in service.get("expose", [])]
    return [port for _, _, port in _published(service)] + exposed


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
def test_a_role_checks_the_health_of_its_own_port_and_opens_it(compose, name):
    service = compose["services"][name]
    port = ROLES[SERVICE_ROLES[name]].port

    assert _container_ports(service) == [port]
    assert f"http://127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"])
    assert not {f"LUCID_{role.upper()}_PORT" for role in ROLES} & set(service["environment"])


@pytest.mark.parametrize("name", [*SERVICE_ROLES, "migrate"])
def test_every_variable_a_service_sets_is_one_the_code_reads(compose, name):
    unknown = set(compose["services"][name]["environment"]) - _variables_read()

    assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", SERVICE_ROLES)
def test_a_role_gets_the_original_variables_and_its_secrets_from_files(compose, name):
    environment = compose["services"][name]["environment"]

    required = {"MONGO_URL", "REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL"}
    assert required <= set(environment)
    assert {"LUCID_STORAGE_PATH", "LUCID_CHUNK_STORE_PATH", "LUCID_COMPRESSION_ALGORITHM"} <= set(
        environment
    )
    assert environment["DJANGO_SECRET_KEY_FILE"] == "/run/secrets/django_secret_key"
    assert environment["DATABASE_URL"] == "postgres://lucid@postgres:5432/lucid"
    assert environment["DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password"


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


# --- docker-compose.yml: what a deployment exposes, keeps secret and may use --------------------

# The roles' twins in the `s3` profile: the same role, its data in a bucket.
S3_SERVICE_ROLES = {f"{name}-s3": role for name, role in SERVICE_ROLES.items()}
PUBLISHED_ROLES = ("api", "recorder")
PUBLISH_ADDRESS = "${LUCID_PUBLISH_ADDRESS:-127.0.0.1}"
TLS_ADDRESS = "${LUCID_TLS_ADDRESS:-0.0.0.0}"
# What the variable names of secrets look like (LUCID_ENCRYPTION_ACTIVE_KEY is a key's id).
SECRET_VARIABLE = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|ENCRYPTION_KEYS")
# A URL with a password in it: scheme://user:password@host.
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]*@", re.IGNORECASE)
# The paths the images we run declare as VOLUME (their Dockerfiles): each must be mounted, or
# Docker makes an anonymous volume there.
IMAGE_VOLUMES = {
    "postgres:16": ["/var/lib/postgresql/data"],
    "redis:7": ["/data"],
    "mongo:7": ["/data/db", "/data/configdb"],
    "chrislusf/seaweedfs:4.48": ["/data"],
}
NGINX_CONFIG = REPO / "deploy" / "tls" / "nginx.conf"


def _role(name: str) -> str | None:
    return {**SERVICE_ROLES, **S3_SERVICE_ROLES}.get(name)


def _size_bytes(size: str) -> int:
    """A Docker or Redis size ("512mb", "1g") in bytes."""
    number, unit = re.fullmatch(r"(\d+)\s*([kmg]?)b?", size.lower()).groups()
    return int(number) * 1024 ** " kmg".index(unit or " ")


def _compose_services() -> list[str]:
    return list(yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"])


def test_only_the_api_and_the_recorder_are_published_and_on_this_machine_by_default(compose):
    published = {
        name: _published(service)
        for name, service in compose["services"].items()
        if "ports" in service and name != "tls-proxy"
    }

    expected = {
        name: [(PUBLISH_ADDRESS, str(ROLES[role].port), ROLES[role].port)]
        for name in compose["services"]
        if (role := _role(name)) in PUBLISHED_ROLES
    }
    assert published == expected


@pytest.mark.parametrize(
    "name", [name for name in _compose_services() if _role(name) not in (None, *PUBLISHED_ROLES)]
)
def test_a_role_that_serves_only_health_and_metrics_is_reached_on_its_networks_only(compose, name):
    service = compose["services"][name]

    assert "ports" not in service
    assert service["expose"] == [str(ROLES[_role(name)].port)]


@pytest.mark.parametrize("name", _compose_services())
def test_every_service_has_memory_cpu_and_process_limits(compose, name):
    service = compose["services"][name]

    assert service["mem_limit"] and service["cpus"] and service["pids_limit"] > 0


@pytest.mark.parametrize("name", _compose_services())
def test_every_service_rotates_its_logs(compose, name):
    logging = compose["services"][name]["logging"]

    assert logging["driver"] == "json-file"
    assert _size_bytes(logging["options"]["max-size"]) <= 100 * 1024**2
    assert int(logging["options"]["max-file"]) >= 1


def test_the_limits_and_log_rotation_are_written_once(compose):
    text = (REPO / "docker-compose.yml").read_text()

    assert text.count("max-size:") == 1
    assert text.count("pids_limit:") == len(compose["x-limits"])


def test_every_secret_is_a_file_under_secrets_that_neither_git_nor_the_image_gets(compose):
    gitignored = (REPO / ".gitignore").read_text().splitlines()

    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"}, name
        assert secret["file"].startswith("./secrets/"), name
    assert "secrets/" in gitignored
    assert _ignored("secrets")


@pytest.mark.parametrize("name", _compose_services())
def test_a_service_reads_its_secrets_from_the_files_it_mounts(compose, name):
    service = compose["services"][name]
    mounted = set(service.get("secrets", []))
    environment = service.get("environment", {})

    for variable, value in environment.items():
        if SECRET_VARIABLE.search(variable):
            assert variable.endswith("_FILE"), f"{name}: {variable} holds a secret itself"
        if str(value).startswith("/run/secrets/"):
            assert value.removeprefix("/run/secrets/") in mounted, f"{name}: {variable}"
    assert mounted <= set(compose["secrets"])


def test_no_secret_is_interpolated_or_in_a_url():
    text = (REPO / "docker-compose.yml").read_text()
    interpolated = re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text)

    assert not [variable for variable in interpolated if SECRET_VARIABLE.search(variable)]
    assert not URL_WITH_PASSWORD.search(text)


def test_redis_is_bounded_and_never_evicts_a_queued_task(compose):
    redis = compose["services"]["redis"]
    command = redis["command"]

    maxmemory = command[command.index("--maxmemory") + 1]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert _size_bytes(maxmemory) < _size_bytes(redis["mem_limit"])


@pytest.mark.parametrize("name", _compose_services())
def test_a_service_leaves_no_anonymous_volume(compose, name):
    service = compose["services"][name]
    mounted = set(service.get("tmpfs", []))

    for mount in service.get("volumes", []):
        source, target = mount.split(":")[:2]
        mounted.add(target)
        if source.startswith("./"):
            assert (REPO / source).is_file(), f"{name}: {source} is not in the repository"
        else:
            assert source in compose["volumes"], f"{name}: {mount} is not a named volume"
    assert set(IMAGE_VOLUMES.get(service["image"], [])) <= mounted


# --- the `tls` profile: nginx in front of the api and the recorder ------------------------------


def _nginx_directives(name: str) -> list[str]:
    """The arguments of every `name ...;` directive of the proxy's config."""
    return re.findall(rf"^\s*{name}\s+([^;]+);", NGINX_CONFIG.read_text(), re.MULTILINE)


def _nginx_upstreams() -> dict[int, str]:
    """Listening port -> the host:port that server proxies to."""
    servers = NGINX_CONFIG.read_text().split("server {")[1:]
    upstreams = {}
    for server in servers:
        (listen,) = re.findall(r"listen\s+(\d+)", server)
        (upstream,) = re.findall(r"set\s+\$\w+\s+([\w.-]+:\d+);", server)
        upstreams[int(listen)] = upstream
    return upstreams


def test_the_tls_proxy_is_an_opt_in_official_nginx_with_its_config_and_certificate(compose):
    proxy = compose["services"]["tls-proxy"]

    assert proxy["profiles"] == ["tls"]
    assert proxy["image"].startswith("nginx:") and "/" not in proxy["image"]
    assert "./deploy/tls/nginx.conf:/etc/lucid/nginx.conf:ro" in proxy["volumes"]
    assert proxy["entrypoint"][-2:] == ["-c", "/etc/lucid/nginx.conf"]
    assert set(proxy["secrets"]) == {"tls_certificate", "tls_private_key"}
    assert _nginx_directives("ssl_certificate") == ["/run/secrets/tls_certificate"]
    assert _nginx_directives("ssl_certificate_key") == ["/run/secrets/tls_private_key"]
    assert proxy["user"].split(":")[0] not in ("0", "root")


def test_the_tls_proxy_publishes_only_https_on_its_address(compose):
    proxy = compose["services"]["tls-proxy"]

    published = {port: address for address, _, port in _published(proxy)}
    assert set(published) == set(_nginx_upstreams())
    assert set(published.values()) == {TLS_ADDRESS}
    assert all(listen.split()[1:] == ["ssl"] for listen in _nginx_directives("listen"))
    assert "lucid_edge" in proxy["networks"]


def test_the_tls_proxy_forwards_to_the_api_and_the_recorder_of_either_set(compose):
    services = compose["services"]
    answering: dict[str, set[str]] = {}
    for name, service in services.items():
        if isinstance(service.get("networks"), dict):
            for alias in service["networks"]["lucid_edge"].get("aliases", []):
                answering.setdefault(alias, set()).add(name)

    forwarded = set()
    for upstream in _nginx_upstreams().values():
        host, port = upstream.split(":")
        (role,) = {_role(name) for name in answering[host]}
        assert int(port) == ROLES[role].port
        assert answering[host] == {name for name in services if _role(name) == role}
        forwarded.add(role)
    assert forwarded == set(PUBLISHED_ROLES)


def test_the_tls_proxy_lets_the_largest_chunk_through():
    (limit,) = _nginx_directives("client_max_body_size")

    assert _size_bytes(limit) >= settings.LUCID_MAX_CHUNK_SIZE_MB * 1024**2


def test_the_tls_proxy_streams_bodies_and_waits_for_a_slow_recorder_as_long_as_it_does():
    gunicorn = (REPO / "lucid" / "gunicorn.conf.py").read_text()
    recorder_timeout = int(re.search(r"^timeout = (\d+) if recorder", gunicorn, re.M).group(1))

    assert _nginx_directives("proxy_request_buffering") == ["off"]
    assert _nginx_directives("proxy_buffering") == ["off"]
    for name in ("client_body_timeout", "send_timeout", "proxy_send_timeout", "proxy_read_timeout"):
        (timeout,) = _nginx_directives(name)
        assert int(timeout.removesuffix("s")) >= recorder_timeout, name


NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
needs_nginx = pytest.mark.skipif(
    NGINX is None,
    reason="nginx is not installed (apt-get install --no-install-recommends nginx-light)",
)


def _nginx_config(directory: Path, replacements: dict[str, str]) -> Path:
    """The proxy's config in `directory`, its secrets a fresh self-signed certificate there."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "tls_certificate").write_bytes(certificate.public_bytes(Encoding.PEM))
    (directory / "tls_private_key").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    text = NGINX_CONFIG.read_text().replace("/run/secrets/", f"{directory}/")
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    config = directory / "nginx.conf"
    config.write_text(text)
    return config


def _nginx(directory: Path, config: Path, *arguments: str) -> list[str]:
    return [NGINX, "-p", f"{directory}/", "-e", "stderr", "-c", str(config), *arguments]


@needs_nginx
def test_the_tls_proxy_config_is_valid(tmp_path):
    config = _nginx_config(tmp_path, {})

    completed = subprocess.run(
        _nginx(tmp_path, config, "-t"), capture_output=True, text=True, timeout=30
    )

    assert completed.returncode == 0, completed.stderr


class _RoleHandler(http.server.BaseHTTPRequestHandler):
    """A role behind the proxy: records each request's path, headers and body size."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, dict[str, str], int]]

    def _answer(self) -> None:
        size = 0
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while chunk_size := int(self.rfile.readline().split(b";")[0], 16):
                size += len(self.rfile.read(chunk_size + 2)) - 2
            self.rfile.readline()
        else:
            size = len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.seen.append((self.path, dict(self.headers), size))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_PUT = _answer

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture(scope="module")
def tls_proxy(tmp_path_factory):
    """The proxy on local ports in front of one stand-in role: (api port, recorder port, seen)."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install --no-install-recommends nginx-light)")
    directory = tmp_path_factory.mktemp("tls-proxy")
    handler = type("Handler", (_RoleHandler,), {"seen": []})
    role = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=role.serve_forever, daemon=True).start()
    api_port, recorder_port = free_ports(2)
    role_address = f"127.0.0.1:{role.server_address[1]}"
    config = _nginx_config(
        directory,
        {
            "listen 8443 ssl": f"listen 127.0.0.1:{api_port} ssl",
            "listen 8444 ssl": f"listen 127.0.0.1:{recorder_port} ssl",
            "lucid-api:8080": role_address,
            "lucid-recorder:8083": role_address,
        },
    )
    proxy = ProcessGroup(
        "nginx", _nginx(directory, config), env={}, log_path=directory / "nginx.log"
    )
    try:
        wait_until_answering(
            {"api": api_port, "recorder": recorder_port},
            seconds=30,
            watching=[proxy],
            answers=listening,
        )
        yield api_port, recorder_port, handler.seen
    finally:
        proxy.stop(signal.SIGTERM)
        role.shutdown()
        role.server_close()


def _https(port: int, method: str, path: str, **options) -> int:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
    try:
        connection.request(method, path, **options)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_the_tls_proxy_tells_the_role_the_scheme_the_host_and_the_client(tls_proxy):
    api_port, _, seen = tls_proxy
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"}

    assert _https(api_port, "GET", "/api/v1/sessions", headers=forged) == 200

    path, headers, _ = seen[-1]
    assert path == "/api/v1/sessions"
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["Host"] == f"127.0.0.1:{api_port}"


def test_the_tls_proxy_streams_the_largest_chunk_to_the_recorder(tls_proxy):
    _, recorder_port, seen = tls_proxy
    body = b"\0" * (settings.LUCID_MAX_CHUNK_SIZE_MB * 1024**2)

    status = _https(recorder_port, "PUT", "/api/v1/sessions/s/chunks/0", body=body)

    assert status == 200
    assert seen[-1][0] == "/api/v1/sessions/s/chunks/0"
    assert seen[-1][2] == len(body)


@pytest.mark.parametrize("listener", ["api", "recorder"])
def test_the_tls_proxy_keeps_the_metrics_internal(tls_proxy, listener):
    api_port, recorder_port, seen = tls_proxy
    port = api_port if listener == "api" else recorder_port
    before = len(seen)

    assert _https(port, "GET", "/metrics") == 404
    assert len(seen) == before


@pytest.mark.parametrize(
    "name", [name for name in _compose_services() if _role(name) in ("processor", "storage")]
)
def test_a_celery_worker_runs_one_pool_process_per_cpu_it_may_use(compose, name):
    service = compose["services"][name]

    assert service["environment"]["LUCID_WORKER_CONCURRENCY"] == service["cpus"]
