"""Fixtures shared by every test layer."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import worker_shutdown
from celery.worker import state as worker_state
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

from chunks_app.models import Chunk
from core.choices import ChunkStatus
from lucid.celery import app as celery_app
from pipeline_app.choices import PipelineState
from pipeline_app.selectors import chunk_tasks_in_queue
from tests.chunks_app.helpers import CHUNK_SIZE
from tests.factories import SessionFactory, UserFactory, staff_member
from tests.support import mongodb

ON_MONGODB = django_settings.DATABASES["default"]["ENGINE"] == "django_mongodb_backend"
if ON_MONGODB:
    mongodb.install()


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
def storage_paths(settings, tmp_path):
    """Every test gets its own empty spool and chunk store."""
    settings.LUCID_STORAGE_PATH = tmp_path / "sessions"
    settings.LUCID_CHUNK_STORE_PATH = tmp_path / "chunks"
    settings.LUCID_CHUNK_STORE_OPTIONS = {"root": str(tmp_path / "chunks")}
    settings.LUCID_TASK_RETRY_DELAY_SECONDS = 0
    return settings


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
