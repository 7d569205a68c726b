"""The service run as `make run` runs it, on storage, database and port of its own."""

import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.client import PASSWORD, USERNAME, ServiceClient
from tests.support.ports import free_port, wait_until_answering
from tests.support.processes import BIN, ProcessGroup, manage

STARTUP_SECONDS = 60
DEATH_SECONDS = 10
# What the test run itself is configured with; a service under test gets its own.
CALLER_VARIABLES = (
    "DATABASE_URL",
    "MONGO_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "PROMETHEUS_MULTIPROC_DIR",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
)
CALLER_PREFIXES = ("LUCID_", "GUNICORN_", "DJANGO_", "PYTEST_")


def environment(root: Path, **variables: str) -> dict[str, str]:
    """The caller's environment without its own service settings, with storage under `root`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in CALLER_VARIABLES and not key.startswith(CALLER_PREFIXES)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="lucid.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_SUPERUSER_USERNAME=USERNAME,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_STATIC_ROOT=str(root / "static"),
        LUCID_STORAGE_PATH=str(root / "sessions"),
        LUCID_CHUNK_STORE_PATH=str(root / "chunks"),
        LUCID_BACKUP_PATH=str(root / "backups"),
        PYTHONUNBUFFERED="1",
    )
    env.update(variables)
    return env


class LucidServer:
    """gunicorn in a process group of its own on the embedded database, under `root`."""

    def __init__(self, root: Path, **variables: str) -> None:
        self.port = free_port()
        self.log_path = root / "server.log"
        self.group: ProcessGroup | None = None
        self.env = environment(
            root, PORT=str(self.port), GUNICORN_WORKERS="2", XDG_RUNTIME_DIR=str(root), **variables
        )

    def migrate(self) -> None:
        """The schema and the superuser, as `make migrate` creates them."""
        for command in (["migrate", "--noinput"], ["ensure_superuser"]):
            completed = manage(*command, env=self.env)
            with self.log_path.open("a") as log:
                log.write(completed.stdout + completed.stderr)
            assert completed.returncode == 0, f"manage.py {command} failed:\n{self.log()}"

    def collect_static(self) -> None:
        """The static files (admin, player, API docs) where WhiteNoise serves them from, as
        `make migrate` collects them; before `start`, which lists them once."""
        completed = manage("collectstatic", "--noinput", "--verbosity", "0", env=self.env)
        assert completed.returncode == 0, completed.stderr

    def start(self) -> None:
        """Start gunicorn and wait until it answers /health."""
        command = [str(BIN / "gunicorn"), "lucid.wsgi", "--config", "lucid/gunicorn.conf.py"]
        self.group = ProcessGroup("gunicorn", command, env=self.env, log_path=self.log_path)
        wait_until_answering(
            {"gunicorn": self.port}, seconds=STARTUP_SECONDS, watching=[self.group]
        )

    def kill(self) -> None:
        """SIGKILL the whole process group and wait until every member is gone."""
        if self.group is not None:
            group, self.group = self.group, None
            group.stop(signal.SIGKILL, seconds=DEATH_SECONDS)

    def client(self) -> ServiceClient:
        return ServiceClient(self.port, logs=self.log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def served(root: Path, *, static: bool = False, **variables: str) -> Iterator[LucidServer]:
    """A migrated, started service under `root` (with its static files collected if `static`),
    killed afterwards; its log printed for failures."""
    lucid = LucidServer(root, **variables)
    lucid.migrate()
    if static:
        lucid.collect_static()
    lucid.start()
    yield lucid
    lucid.kill()
    print(f"--- server log ({lucid.log_path}) ---\n{lucid.log()}")
