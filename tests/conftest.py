"""Fixtures shared by every test layer, and the storage world the suite runs in.

`LUCID_TEST_STORAGE` picks the world: `filesystem` (the default) gives every test a chunk store
and a spool in directories of its own; `s3` gives it both under a fresh prefix of one bucket of
one `weed mini` for the whole run. Tests marked `filesystem_only` are skipped in the S3 world.
"""

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun, worker_shutdown
from celery.worker import state as worker_state
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connections
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from chunks_app.models import Chunk
from chunks_app.storage.s3 import S3ChunkStore
from core.choices import ChunkStatus, PipelineState
from lucid.celery import app as celery_app
from pipeline_app.selectors import chunk_tasks_in_queue
from tests.chunks_app.helpers import CHUNK_SIZE
from tests.factories import SessionFactory, UserFactory, staff_member
from tests.support import mongodb
from tests.support.faults import Clock, Faults, faulty_chunk_store, faulty_spool
from tests.support.s3 import S3Service, weed_mini

STORAGE_WORLDS = ("filesystem", "s3")
STORAGE_WORLD = os.environ.get("LUCID_TEST_STORAGE") or "filesystem"
ON_S3 = STORAGE_WORLD == "s3"
S3_BACKEND = f"{S3ChunkStore.__module__}.{S3ChunkStore.__qualname__}"
# The chunk store's quota in the S3 world, as LUCID_STORAGE_BACKEND=s3 requires one.
S3_QUOTA_BYTES = 10 * 1024**3
E2E_ON_THEIR_OWN_STORAGE = (
    "filesystem only: an e2e test's service processes keep their data in directories of their own"
)

ON_MONGODB = django_settings.DATABASES["default"]["ENGINE"] == "django_mongodb_backend"
if ON_MONGODB:
    mongodb.install()


def pytest_configure(config: pytest.Config) -> None:
    if STORAGE_WORLD not in STORAGE_WORLDS:
        raise pytest.UsageError(
            f"LUCID_TEST_STORAGE must be one of {', '.join(STORAGE_WORLDS)}, not {STORAGE_WORLD!r}."
        )


def pytest_report_header() -> str:
    return f"storage: {STORAGE_WORLD} (LUCID_TEST_STORAGE)"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In the S3 world, skip what is about the filesystem, saying why.

    The e2e tests are left to the filesystem world too: the service processes they start keep
    their data in directories of their own (tests/e2e/test_topology_s3.py runs the roles on
    SeaweedFS in any world).
    """
    if not ON_S3:
        return
    for item in items:
        marker = item.get_closest_marker("filesystem_only")
        if marker is not None:
            why = marker.args[0] if marker.args else "it is about the filesystem"
            item.add_marker(pytest.mark.skip(reason=f"filesystem only: {why}"))
        elif item.get_closest_marker("e2e") is not None:
            item.add_marker(pytest.mark.skip(reason=E2E_ON_THEIR_OWN_STORAGE))


@pytest.fixture(scope="session")
def s3_service() -> Iterator[S3Service]:
    """One `weed mini` for the whole run, its bucket made, killed at the end.

    Its data lives outside pytest's base temporary directory: another pytest run on the
    machine prunes old base directories, and would pull the files from under a running service.
    """
    with (
        tempfile.TemporaryDirectory(prefix="lucid-weed-") as directory,
        weed_mini(Path(directory), graceful_stop=False) as service,
    ):
        yield service


@pytest.fixture
def user(db):
    """The default caller of API tests: an operator, who may do anything on any session."""
    return UserFactory(username="operator", roles=["operator"])


@pytest.fixture
def recording(user):
    """A session of `user` in status recording, cut into CHUNK_SIZE chunks."""
    return SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)


@pytest.fixture
def clients(db) -> dict[str, Client]:
    """Browsers logged in to the admin: a superuser, an operator and an auditor."""
    users = {
        "superuser": UserFactory(username="admin-root", is_staff=True, is_superuser=True),
        "operator": staff_member("operator"),
        "auditor": staff_member("auditor"),
    }
    clients = {role: Client() for role in users}
    for role, client in clients.items():
        client.force_login(users[role])
    return clients


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with nothing cached, as after a deploy."""
    cache.clear()


@pytest.fixture(autouse=True)
def storage_paths(request, settings, tmp_path):
    """Every test gets its own empty spool and chunk store: directories under its tmp_path, or
    in the S3 world `test-<uuid>/chunks/` and `test-<uuid>/spool/` in the bucket, configured as
    LUCID_STORAGE_BACKEND=s3 configures them."""
    settings.LUCID_STORAGE_PATH = tmp_path / "sessions"
    settings.LUCID_CHUNK_STORE_PATH = tmp_path / "chunks"
    settings.LUCID_CHUNK_STORE_OPTIONS = {"root": str(tmp_path / "chunks")}
    settings.LUCID_TASK_RETRY_DELAY_SECONDS = 0
    if ON_S3:
        service: S3Service = request.getfixturevalue("s3_service")
        prefix = f"test-{uuid.uuid4().hex}"
        settings.LUCID_STORAGE_BACKEND = "s3"
        settings.LUCID_STORAGE_QUOTA_BYTES = S3_QUOTA_BYTES
        settings.LUCID_CHUNK_STORE_BACKEND = S3_BACKEND
        settings.LUCID_CHUNK_STORE_OPTIONS = {
            **service.store_options(prefix=f"{prefix}/chunks"),
            "quota_bytes": S3_QUOTA_BYTES,
        }
        settings.LUCID_SPOOL_STORE_BACKEND = S3_BACKEND
        settings.LUCID_SPOOL_STORE_OPTIONS = service.store_options(prefix=f"{prefix}/spool")
    return settings


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """django's clock, to move on: cleanup and retention judge ages by it, so moving it on makes
    every file and object look older, on any backend."""
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock.now)
    return clock


@pytest.fixture
def chunk_store_faults(storage_paths) -> Faults:
    """The test's chunk store as configured, with faults to inject (tests.support.faults)."""
    return faulty_chunk_store(storage_paths)


@pytest.fixture
def spool_faults(storage_paths) -> Faults:
    """The test's spool as configured, with faults to inject (tests.support.faults)."""
    return faulty_spool(storage_paths)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Worker threads close their connections after each task, so the test database can go."""
    for database in django_settings.DATABASES.values():
        database["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, migrated; on MongoDB what the migrations seeded is kept for resets."""
    if ON_MONGODB:
        with django_db_blocker.unblock():
            mongodb.remember_seeded()


@pytest.fixture(scope="session", autouse=True)
def celery_worker(django_db_setup):
    """With a broker configured, a real Celery worker consumes from it for the whole run."""
    if django_settings.CELERY_TASK_ALWAYS_EAGER:
        yield None
        return
    celery_app.control.purge()
    worker_shutdown.connect(_close_thread_connections, weak=False)
    # A worker keeps its connection between tasks (CELERY_DB_REUSE_MAX); the pool's threads here
    # close theirs after each task, so that the test database can be dropped at the end.
    task_postrun.connect(_close_thread_connections, weak=False)
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        shutdown_timeout=30,
        queues=list(django_settings.LUCID_TASK_QUEUES),
    ) as worker:
        yield worker


def _close_thread_connections(**kwargs) -> None:
    connections.close_all()


@pytest.fixture(autouse=True)
def worker_finished_before_teardown(request, celery_worker):
    """With a real worker, a transactional test ends only once the worker has nothing left to do.

    Otherwise a task would still run while the test database is being emptied.
    """
    marker = request.node.get_closest_marker("django_db")
    if celery_worker is None or marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    deadline = time.monotonic() + 30
    while _pipeline_busy() and time.monotonic() < deadline:
        time.sleep(0.05)


def _pipeline_busy() -> bool:
    """A task runs, is prefetched or waits in the broker (one for a chunk since deleted, too),
    or a chunk of a running pipeline waits for one."""
    if worker_state.active_requests or worker_state.reserved_requests or chunk_tasks_in_queue():
        return True
    waiting = Chunk.objects.filter(
        status__in=[ChunkStatus.RECEIVED, ChunkStatus.PROCESSING],
        session__pipeline__state=PipelineState.RUNNING,
    )
    return waiting.exists()
