"""The bench database on the local PostgreSQL: its URLs and user, what it holds, drop and create."""

from __future__ import annotations

from typing import NamedTuple

import psycopg

from bench.errors import BenchmarkError
from bench.service import Credentials

DATABASE_NAME = "lucid_bench_api"
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
MAINTENANCE_URL = f"{SERVER_URL}/postgres"
DATABASE_URL = f"{SERVER_URL}/{DATABASE_NAME}"
BENCH_USER = Credentials("bench-api", "bench-api-local-only")


class DataShape(NamedTuple):
    sessions: int
    chunks: int
    deepest_session_chunks: int


def existing_data() -> DataShape | None:
    """What the bench database holds, None if it does not exist or is not migrated."""
    with psycopg.connect(MAINTENANCE_URL) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
    if not exists:
        return None
    with psycopg.connect(DATABASE_URL) as connection:
        (chunk_table,) = connection.execute("SELECT to_regclass('chunks_app_chunk')").fetchone()
        if chunk_table is None:
            return None
        sessions, deepest = connection.execute(
            "SELECT count(*), coalesce(max(chunk_count), 0) FROM sessions_app_session"
        ).fetchone()
        (chunks,) = connection.execute("SELECT count(*) FROM chunks_app_chunk").fetchone()
    return DataShape(sessions, chunks, deepest)


def check_server() -> None:
    try:
        psycopg.connect(MAINTENANCE_URL, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        raise BenchmarkError(f"cannot reach PostgreSQL at {MAINTENANCE_URL}: {error}") from error


def drop_database() -> None:
    with psycopg.connect(MAINTENANCE_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")


def recreate_database() -> None:
    drop_database()
    with psycopg.connect(MAINTENANCE_URL, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {DATABASE_NAME}")


def bench_ids() -> tuple[list[str], str]:
    """Every session id, and the id of the session with the most chunks."""
    with psycopg.connect(DATABASE_URL) as connection:
        ids = [str(row[0]) for row in connection.execute("SELECT id FROM sessions_app_session")]
        (deep_id,) = connection.execute(
            "SELECT id FROM sessions_app_session ORDER BY chunk_count DESC LIMIT 1"
        ).fetchone()
    return ids, str(deep_id)
