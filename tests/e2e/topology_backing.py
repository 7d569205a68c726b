"""What a topology test's roles share: a database of their own and empty Redis databases."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.e2e.topology_databases import TopologyDatabase, configured_database, with_path


@dataclass(frozen=True)
class Backing:
    """The fresh database and the Redis URLs of the broker and the cache."""

    database: TopologyDatabase
    broker_url: str
    cache_url: str


def broker_server() -> str:
    return os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL", "")


def topology_skip_reason(database_name: str) -> str:
    """Why a topology test cannot run in this world ("" when it can)."""
    if configured_database(database_name) is None:
        return "needs MONGO_URL, or DATABASE_URL on PostgreSQL (the 2nd and 3rd runs of .ci/run)"
    broker = broker_server()
    if not broker:
        return "needs CELERY_BROKER_URL or REDIS_URL (the 2nd and 3rd runs of .ci/run)"
    if urlsplit(broker).scheme not in ("redis", "rediss"):
        return "needs a Redis broker: the topology gets Redis databases of its own"
    return ""


@contextmanager
def topology_backing(database_name: str, *, broker_db: int, cache_db: int) -> Iterator[Backing]:
    """Create the database and empty the Redis databases; drop and empty them again after."""
    import redis

    database = configured_database(database_name)
    database.create()
    broker_url = with_path(broker_server(), f"/{broker_db}")
    cache_url = with_path(os.environ.get("REDIS_URL") or broker_server(), f"/{cache_db}")
    for url in (broker_url, cache_url):
        redis.Redis.from_url(url).flushdb()
    try:
        yield Backing(database, broker_url, cache_url)
    finally:
        database.drop()
        for url in (broker_url, cache_url):
            redis.Redis.from_url(url).flushdb()
