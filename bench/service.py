"""The service's processes: environment, manage.py, gunicorn, a Celery worker, and stopping them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import django

from bench.errors import BenchmarkError

HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
PASSED_THROUGH_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
# What Django in a benchmark's own process takes from the service's environment.
DJANGO_VARIABLES = (
    "DATABASE_URL",
    "LUCID_STORAGE_PATH",
    "LUCID_CHUNK_STORE_PATH",
    "DJANGO_STATIC_ROOT",
)

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"

Process = subprocess.Popen[bytes]
Processes = list[Process]


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def free_port(requested: int) -> int:
    """`requested` if nothing listens on it (any free port for 0), else BenchmarkError."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, requested))
        except OSError as error:
            raise BenchmarkError(f"port {requested} is not free: {error}") from error
        return probe.getsockname()[1]


def chunk_store_path(workdir: Path) -> Path:
    """Where the service started in `workdir` stores its chunks."""
    return workdir / "service" / "chunks"


def service_environment(
    workdir: Path, *, port: int, workers: int, credentials: Credentials
) -> dict[str, str]:
    """The service's defaults in `workdir`, plus the PASSED_THROUGH_VARIABLES the caller set."""
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "PORT": str(port),
        "GUNICORN_WORKERS": str(workers),
        "LUCID_STORAGE_PATH": str(workdir / "service" / "sessions"),
        "LUCID_CHUNK_STORE_PATH": str(chunk_store_path(workdir)),
        "DJANGO_STATIC_ROOT": str(workdir / "service" / "static"),
        "DJANGO_SUPERUSER_USERNAME": credentials.username,
        "DJANGO_SUPERUSER_PASSWORD": credentials.password,
    }
    for name in PASSED_THROUGH_VARIABLES:
        if os.environ.get(name):
            environment[name] = os.environ[name]
    return environment


def configure_django(environment: dict[str, str]) -> None:
    """Set up Django in this process on the service's database and stores (its environment's),
    for the app's own code and constants."""
    for name in DJANGO_VARIABLES:
        if name in environment:
            os.environ[name] = environment[name]
        else:
            os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "lucid.settings"
    django.setup()


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_manage_command(arguments: list[str], environment: dict[str, str], log_path: Path) -> None:
    with open(log_path, "ab") as log:
        completed = subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", *arguments],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=STARTUP_TIMEOUT_SECONDS,
        )
    if completed.returncode != 0:
        raise BenchmarkError(
            f"manage.py {' '.join(arguments)} exited with {completed.returncode}:\n"
            f"{log_tail(log_path)}"
        )


def migrate(environment: dict[str, str], logs: Path) -> None:
    """Migrate the service's database and create its user, as a deployment does."""
    run_manage_command(["migrate", "--noinput"], environment, logs / "manage.log")
    run_manage_command(["ensure_superuser"], environment, logs / "manage.log")


def start_process(command: list[str], environment: dict[str, str], log_path: Path) -> Process:
    """Start `command` in its own process group, so that stopping it stops its children too."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process: Process) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after STOP_TIMEOUT_SECONDS."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_processes(processes: Processes) -> None:
    """Stop every process of the list, the last started first, and empty it."""
    while processes:
        stop_process(processes.pop())


def start_gunicorn(environment: dict[str, str], logs: Path, processes: Processes) -> Process:
    """Start gunicorn as deployed; appended to `processes` at once, for the caller to stop."""
    command = [str(VENV_BIN / "gunicorn"), "lucid.wsgi", "--config", "lucid/gunicorn.conf.py"]
    command.append("--no-control-socket")  # the default one in $HOME is shared by every gunicorn
    server = start_process(command, environment, logs / "gunicorn.log")
    processes.append(server)
    return server


def wait_for_port(server: Process, environment: dict[str, str], logs: Path) -> None:
    """Wait until gunicorn listens on the environment's PORT."""
    port, log_path = int(environment["PORT"]), logs / "gunicorn.log"
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchmarkError(f"gunicorn exited with {server.returncode}:\n{log_tail(log_path)}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BenchmarkError(f"gunicorn did not listen on port {port}:\n{log_tail(log_path)}")


def start_celery_worker(
    environment: dict[str, str], logs: Path, processes: Processes, *, concurrency: int
) -> Process:
    """Start a worker of `concurrency` processes on the pipeline's queues; wait until it answers.

    It is appended to `processes` at once, for the caller to stop.
    """
    node_name = f"lucid-bench-{os.getpid()}@{socket.gethostname()}"
    command = [str(VENV_BIN / "celery"), "-A", "lucid", "worker", "-l", "warning"]
    command += ["--concurrency", str(concurrency), "-Q", "processing,storage", "-n", node_name]
    worker = start_process(command, environment, logs / "celery.log")
    processes.append(worker)
    wait_for_celery_worker(worker, node_name, environment, logs / "celery.log")
    return worker


def wait_for_celery_worker(
    worker: Process, node_name: str, environment: dict[str, str], log_path: Path
) -> None:
    """Wait until the worker answers a ping, so that its start-up is not counted as work."""
    ping = [str(VENV_BIN / "celery"), "-A", "lucid", "inspect", "ping", "-d", node_name]
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise BenchmarkError(
                f"the Celery worker exited with {worker.returncode}:\n{log_tail(log_path)}"
            )
        answered = subprocess.run(
            [*ping, "--timeout", "1"],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            timeout=STARTUP_TIMEOUT_SECONDS,
        )
        if answered.returncode == 0:
            return
    raise BenchmarkError(f"the Celery worker {node_name} did not answer:\n{log_tail(log_path)}")


@dataclass(frozen=True)
class Service:
    """A started service: its port, its gunicorn master and its Celery worker, if any."""

    port: int
    server: Process
    celery_worker: Process | None

    @property
    def pids(self) -> list[int]:
        """The processes whose trees do the service's work."""
        workers = [] if self.celery_worker is None else [self.celery_worker.pid]
        return [self.server.pid, *workers]


def start_service(
    workdir: Path,
    processes: Processes,
    *,
    credentials: Credentials,
    port: int,
    workers: int,
    worker_concurrency: int = 1,
    extra_environment: dict[str, str] | None = None,
) -> Service:
    """Migrate, create the user, start gunicorn (and a Celery worker when a broker is set).

    Every started process is appended to `processes` at once, for the caller to stop.
    """
    environment = service_environment(
        workdir, port=free_port(port), workers=workers, credentials=credentials
    )
    environment.update(extra_environment or {})
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    migrate(environment, logs)
    server = start_gunicorn(environment, logs, processes)
    celery_worker = None
    if "CELERY_BROKER_URL" in environment:
        celery_worker = start_celery_worker(
            environment, logs, processes, concurrency=worker_concurrency
        )
    wait_for_port(server, environment, logs)
    return Service(int(environment["PORT"]), server, celery_worker)
