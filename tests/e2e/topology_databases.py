"""The topology's database of its own, on PostgreSQL or MongoDB: created, read directly, dropped.

The topology test asks either database the same few questions (chunks by status, chunks stuck
without a claim, the watchdog's schedule and runs, the attempts of given chunks). PostgreSQL
answers them in SQL; MongoDB with queries on the collections django-mongodb-backend writes, which
are named as the SQL tables and hold foreign keys as `<name>_id` fields and datetimes as naive UTC.

A MongoDB database is emptied in transactions before it is dropped (`drop_mongodb_database`, which
test_serve_mongodb uses too): a role killed inside a transaction leaves its writes pending until
the server aborts the transaction, after 60 s idle. A transaction that meets them is told
WriteConflict, and pymongo's `with_transaction` tries again until they are gone; SecantusDB's
dropDatabase instead spins on them forever, holding a lock that every other command waits for.
"""

import os
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from urllib.parse import urlsplit

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")
MONGODB_SCHEMES = ("mongodb", "mongodb+srv")
CHUNKS = "chunks_app_chunk"
PERIODIC_TASKS = "django_celery_beat_periodictask"
INTERVALS = "django_celery_beat_intervalschedule"


def with_path(url: str, path: str) -> str:
    return urlsplit(url)._replace(path=path).geturl()


class TopologyDatabase(ABC):
    """A database named `name` on the server of `server_url`, and what the test reads from it."""

    def __init__(self, server_url: str, name: str) -> None:
        self.server_url = server_url
        self.name = name
        self.url = with_path(server_url, f"/{name}")

    @property
    @abstractmethod
    def environment(self) -> dict[str, str]:
        """The variables that point the service's roles at this database."""

    @abstractmethod
    def create(self) -> None:
        """An empty database, whatever an earlier run left under the same name."""

    @abstractmethod
    def drop(self) -> None: ...

    @abstractmethod
    def chunk_counts(self) -> dict[str, int]:
        """Status -> how many chunks have it."""

    @abstractmethod
    def processing_chunk_ids(self) -> list:
        """The chunks `processing` now, as keys that `chunk_attempts` takes."""

    @abstractmethod
    def chunks_processing_unclaimed(self, *, older_than_seconds: float) -> list[tuple]:
        """(session, sequence, attempts, created_at) of chunks `processing` with no claimed_at."""

    @abstractmethod
    def interval(self, task_name: str) -> tuple[int, str]:
        """The periodic task's interval schedule: (every, period)."""

    @abstractmethod
    def runs(self, task_name: str) -> tuple[int, datetime | None]:
        """The periodic task's total_run_count and last_run_at."""

    @abstractmethod
    def chunk_attempts(self, chunk_ids: list) -> list[int]:
        """The attempts of each chunk of `chunk_ids`."""


class PostgresDatabase(TopologyDatabase):
    """A PostgreSQL database beside the suite's own on the DATABASE_URL server."""

    @property
    def environment(self) -> dict[str, str]:
        return {"DATABASE_URL": self.url}

    def create(self) -> None:
        self._maintain(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._maintain(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._maintain(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def chunk_counts(self) -> dict[str, int]:
        return dict(self._query(f"SELECT status, count(*) FROM {CHUNKS} GROUP BY status"))

    def processing_chunk_ids(self) -> list:
        rows = self._query(f"SELECT id FROM {CHUNKS} WHERE status = 'processing'")
        return [chunk_id for (chunk_id,) in rows]

    def chunks_processing_unclaimed(self, *, older_than_seconds: float) -> list[tuple]:
        return self._query(
            f"SELECT session_id, sequence, attempts, created_at FROM {CHUNKS} "
            "WHERE status = 'processing' AND claimed_at IS NULL "
            "AND created_at < now() - make_interval(secs => %s)",
            older_than_seconds,
        )

    def interval(self, task_name: str) -> tuple[int, str]:
        (schedule,) = self._query(
            f"SELECT i.every, i.period FROM {PERIODIC_TASKS} t "
            f"JOIN {INTERVALS} i ON i.id = t.interval_id WHERE t.name = %s",
            task_name,
        )
        return schedule

    def runs(self, task_name: str) -> tuple[int, datetime | None]:
        (runs,) = self._query(
            f"SELECT total_run_count, last_run_at FROM {PERIODIC_TASKS} WHERE name = %s",
            task_name,
        )
        return runs

    def chunk_attempts(self, chunk_ids: list) -> list[int]:
        rows = self._query(f"SELECT attempts FROM {CHUNKS} WHERE id = ANY(%s)", chunk_ids)
        return [attempts for (attempts,) in rows]

    def _query(self, sql: str, *parameters) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            return connection.execute(sql, parameters).fetchall()

    def _maintain(self, sql: str) -> None:
        import psycopg

        maintenance = with_path(self.server_url, "/postgres")
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(sql)


class MongoDatabase(TopologyDatabase):
    """A MongoDB database beside the suite's own on the MONGO_URL server; chunks keyed by _id."""

    @cached_property
    def client(self):
        import pymongo

        return pymongo.MongoClient(self.server_url)

    @cached_property
    def database(self):
        return self.client[self.name]

    @property
    def environment(self) -> dict[str, str]:
        return {"MONGO_URL": self.url}

    def create(self) -> None:
        drop_mongodb_database(self.client, self.name)

    def drop(self) -> None:
        try:
            drop_mongodb_database(self.client, self.name)
        finally:
            self.client.close()

    def chunk_counts(self) -> dict[str, int]:
        groups = self.database[CHUNKS].aggregate(
            [{"$group": {"_id": "$status", "count": {"$sum": 1}}}]
        )
        return {group["_id"]: group["count"] for group in groups}

    def processing_chunk_ids(self) -> list:
        return self.database[CHUNKS].distinct("_id", {"status": "processing"})

    def chunks_processing_unclaimed(self, *, older_than_seconds: float) -> list[tuple]:
        created_before = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        chunks = self.database[CHUNKS].find(
            {"status": "processing", "claimed_at": None, "created_at": {"$lt": created_before}}
        )
        return [
            (chunk["session_id"], chunk["sequence"], chunk["attempts"], chunk["created_at"])
            for chunk in chunks
        ]

    def interval(self, task_name: str) -> tuple[int, str]:
        task = self._periodic_task(task_name)
        schedule = self.database[INTERVALS].find_one({"_id": task["interval_id"]})
        assert schedule is not None, f"{task_name!r}: no interval schedule {task['interval_id']}"
        return schedule["every"], schedule["period"]

    def runs(self, task_name: str) -> tuple[int, datetime | None]:
        task = self._periodic_task(task_name)
        return task["total_run_count"], task["last_run_at"]

    def chunk_attempts(self, chunk_ids: list) -> list[int]:
        chunks = self.database[CHUNKS].find({"_id": {"$in": chunk_ids}}, {"attempts": 1})
        return [chunk["attempts"] for chunk in chunks]

    def _periodic_task(self, task_name: str) -> dict:
        (task,) = self.database[PERIODIC_TASKS].find({"name": task_name})
        return task


def drop_mongodb_database(client, name: str) -> None:
    """Drop database `name` once no transaction of a killed client holds a write in it."""
    database = client[name]
    collections = [
        database[collection]
        for collection in database.list_collection_names()
        if not collection.startswith("system.")
    ]
    with client.start_session() as session:
        for collection in collections:
            session.with_transaction(partial(_empty, collection))
    client.drop_database(name)


def _empty(collection, session) -> None:
    collection.delete_many({}, session=session)


def configured_database(name: str) -> TopologyDatabase | None:
    """A database `name` on the server the suite runs on, MONGO_URL first as in lucid.settings."""
    mongo_url = os.environ.get("MONGO_URL", "")
    if urlsplit(mongo_url).scheme in MONGODB_SCHEMES:
        return MongoDatabase(mongo_url, name)
    database_url = os.environ.get("DATABASE_URL", "")
    if urlsplit(database_url).scheme in POSTGRES_SCHEMES:
        return PostgresDatabase(database_url, name)
    return None
