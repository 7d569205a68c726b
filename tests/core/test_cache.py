"""The Redis cache: used for statistics and storage usage, and never needed for correctness."""

import shutil
import subprocess

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_redis import get_redis_connection

from tests.chunks_app.helpers import KIB, put_chunk, random_bytes, wait_until_settled
from tests.factories import SessionFactory
from tests.support.ports import free_port, listening, wait_until_answering

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


@pytest.fixture
def own_redis(settings):
    """A redis-server of this test's own, which the test may stop."""
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until_answering({"redis-server": port}, seconds=10, answers=listening)
    except AssertionError:
        server.kill()
        raise
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.25,
                "SOCKET_TIMEOUT": 0.25,
            },
        }
    }
    yield server
    server.kill()
    server.wait()


def _statistics(client) -> dict:
    response = client.get("/api/v1/sessions/statistics")
    assert response.status_code == 200
    return response.json()


def test_statistics_are_cached_in_redis_and_dropped_on_change(api_client, user, own_redis):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    _statistics(api_client)
    redis = get_redis_connection("default")
    assert any(b"statistics" in key for key in redis.keys("*"))

    put_chunk(api_client, session, 0, random_bytes(3000))
    wait_until_settled(session)

    assert _statistics(api_client)["size"] == 3000


def test_api_answers_correctly_after_redis_stops(api_client, user, own_redis):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    put_chunk(api_client, session, 0, random_bytes(1000))
    assert _statistics(api_client)["size"] == 1000

    own_redis.kill()
    own_redis.wait()
    put_chunk(api_client, session, 1, random_bytes(500))
    wait_until_settled(session)

    assert _statistics(api_client)["size"] == 1500
    assert api_client.get(f"/api/v1/sessions/{session.id}").json()["size"] == 1500
    health = api_client.get("/health")
    assert health.status_code == 200
    assert health.json()["checks"]["cache"] != "ok"


def test_session_lookups_of_chunk_reads_are_cached_and_dropped_on_delete(
    api_client, user, own_redis
):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    chunks = f"/api/v1/sessions/{session.id}/chunks"
    with CaptureQueriesContext(connection) as cold:
        assert api_client.get(chunks).status_code == 200
    redis = get_redis_connection("default")
    assert any(str(session.id).encode() in key for key in redis.keys("*session-access*"))

    with CaptureQueriesContext(connection) as warm:
        assert api_client.get(chunks).status_code == 200
    assert any("sessions_app_session" in query["sql"] for query in cold)
    assert not any("sessions_app_session" in query["sql"] for query in warm)

    assert api_client.delete(f"/api/v1/sessions/{session.id}").status_code == 204
    assert not redis.keys("*session-access*")
    assert api_client.get(chunks).status_code == 404
