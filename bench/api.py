"""API benchmark: read latencies of Lucid's JSON API on a large database, against a trivial view.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, user postgres, trust auth):
`.venv/bin/python -m bench.api [--sessions 10000] [--chunks 1000000] [--clients 16]
[--requests N] [--keep-database]`

It creates the database `lucid_bench_api`, migrates it and fills it straight through COPY: one
bench user owning --sessions sessions of every status, and --chunks chunks, of which one "deep"
session holds DEEP_SESSION_CHUNKS (enough for a page 5,000 at the default page size of 50) and the
rest are spread unevenly over the other sessions. The running totals on each session row and in
`lucid_counter` are then computed from the rows with SQL aggregates, as the app would have kept
them, and the database is vacuumed and analyzed.

The real service (gunicorn, 2 workers with the threads of lucid/gunicorn.conf.py, no broker) then
answers --clients threads, each on its own keep-alive connection: --requests requests per
endpoint, after a warm-up, in ROUNDS rounds that each visit every endpoint in turn:
1. `GET /auth/me`, a trivial authenticated DRF view: the baseline of authentication, routing,
   middleware, rendering and this client's own overhead;
2. `GET /sessions/{id}` for random sessions;
3. `GET /sessions/{deep}/chunks`, the first page of the deep session's chunks;
4. the same list's page 5,000, reached once (before the clock) by following `next` links;
5. `GET /sessions/statistics`, the system statistics.

How to read the ratios: each endpoint's p99 divided by the trivial view's p99 is what its own
work (queries, serialization) costs on top of what every request pays; 2 would mean the endpoint
is as slow as two trivial requests. Page 5,000's p99 over page 1's says whether the chunk list
depends on depth (about 1: it does not). Latencies are measured in this process from sending the
request to reading the whole response; with more clients than cores they include queueing, and
any other load on the machine shows in every row (the machine line gives the load average). The
targets are reported, not enforced: the exit status is 0 whenever the run completes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import django
import psycopg

from bench.ingest import (
    API,
    MIB,
    SEED,
    VENV_BIN,
    ApiClient,
    BenchmarkError,
    Credentials,
    UnexpectedResponse,
    exit_on_sigterm,
    free_port,
    percentile,
    progress,
    run_manage_command,
    service_environment,
    start_process,
    stop_process,
    wait_for_port,
)
from chunks_app.merkle import merkle_root
from core.choices import ChunkStatus, CompressionAlgorithm
from sessions_app.choices import IngestMode, SessionStatus

DATABASE_NAME = "lucid_bench_api"
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
MAINTENANCE_URL = f"{SERVER_URL}/postgres"
DATABASE_URL = f"{SERVER_URL}/{DATABASE_NAME}"
BENCH_USER = Credentials("bench-api", "bench-api-local-only")
GUNICORN_WORKERS = 2

DEEP_SESSION_CHUNKS = 300_000
DEEP_PAGE = 5_000
PAGE_SIZE = 50
PROGRESS_EVERY_CHUNKS = 100_000
WARM_UP_REQUESTS_PER_CLIENT = 20
ROUNDS = 4
WALK_PROGRESS_EVERY_PAGES = 1_000

RATIO_TARGET = 2.0
STATISTICS_P99_TARGET_MS = 20.0
DEPTH_RATIO_TARGET = 1.25

CHUNK_SIZES = (1 * MIB, 4 * MIB, 10 * MIB, 16 * MIB)
SESSION_STATUS_SHARES = {
    SessionStatus.STOPPED: 0.75,
    SessionStatus.RECORDING: 0.10,
    SessionStatus.PAUSED: 0.05,
    SessionStatus.FAILED: 0.05,
    SessionStatus.CREATED: 0.05,
}
CODEC_LEVELS = {
    CompressionAlgorithm.ZSTD: 6,
    CompressionAlgorithm.LZ4: 0,
    CompressionAlgorithm.GZIP: 6,
    CompressionAlgorithm.NONE: 0,
}
CODEC_WEIGHTS = (70, 15, 10, 5)
INCOMPRESSIBLE_SHARE = 0.1
FAILURE_RATES = {SessionStatus.FAILED: 0.05}
DEFAULT_FAILURE_RATE = 0.002
MAX_WAITING_CHUNKS = 6
# Every session ended less than this long ago: within the default retention of 30 days.
HISTORY_DAYS = 20


# --- Test data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPlan:
    """One session to generate: its row's fixed fields and the shape of its chunks."""

    id: uuid.UUID
    index: int
    status: str
    chunk_count: int
    chunk_size: int
    last_chunk_size: int
    algorithm: str
    compression_ratio: float
    failure_rate: float
    waiting_chunks: int
    chunk_interval: timedelta
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class SessionRow(NamedTuple):
    """A row of sessions_app_session as COPY takes it; the running totals are filled later."""

    id: uuid.UUID
    name: str
    owner_id: int
    host: str
    metadata: str
    status: str
    chunk_size: int
    compression_algorithm: str
    compression_level: int
    retention_days: int | None
    legal_hold: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    chunk_count: int
    size: int
    compressed_size: int
    chunks_received: int
    chunks_processing: int
    chunks_stored: int
    chunks_failed: int
    backlog_bytes: int
    processing_us: int
    ingest_mode: str
    stream_offset: int
    merkle_root: str


class ChunkRow(NamedTuple):
    """A row of chunks_app_chunk as COPY takes it."""

    id: uuid.UUID
    session_id: uuid.UUID
    sequence: int
    size: int
    sha256: str
    status: str
    spool_key: str
    algorithm: str | None
    compressed_size: int | None
    stored_sha256: str
    storage_key: str
    error: str
    attempts: int
    processing_ms: float | None
    created_at: datetime
    claimed_at: datetime | None
    stored_at: datetime | None


def random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(bytes=rng.randbytes(16), version=4)


def random_sha256(rng: random.Random) -> str:
    return rng.randbytes(32).hex()


def session_statuses(rng: random.Random, count: int) -> list[str]:
    """The deep session (first) is stopped; the others follow SESSION_STATUS_SHARES, shuffled."""
    others = [
        status
        for status, share in SESSION_STATUS_SHARES.items()
        for _ in range(round(share * (count - 1)))
    ]
    others = (others + [SessionStatus.STOPPED] * count)[: count - 1]
    rng.shuffle(others)
    return [SessionStatus.STOPPED, *others]


def chunk_counts(rng: random.Random, statuses: list[str], chunks: int) -> list[int]:
    """DEEP_SESSION_CHUNKS for the first session, the rest over the others by lognormal weights.

    A session still `created` has received nothing.
    """
    weights = [
        0.0 if status == SessionStatus.CREATED else rng.lognormvariate(0, 1.2)
        for status in statuses[1:]
    ]
    spread = Counter(
        rng.choices(range(1, len(statuses)), weights=weights, k=chunks - DEEP_SESSION_CHUNKS)
    )
    return [DEEP_SESSION_CHUNKS, *(spread[index] for index in range(1, len(statuses)))]


def plan_session(
    rng: random.Random, *, index: int, status: str, chunk_count: int, now: datetime
) -> SessionPlan:
    chunk_size = rng.choice(CHUNK_SIZES)
    algorithm = rng.choices(list(CODEC_LEVELS), weights=CODEC_WEIGHTS)[0]
    compressible = algorithm != CompressionAlgorithm.NONE and rng.random() > INCOMPRESSIBLE_SHARE
    chunk_interval = timedelta(seconds=rng.uniform(0.5, 5.0))
    recorded = chunk_interval * chunk_count
    created_at = now - recorded - timedelta(seconds=rng.uniform(60, HISTORY_DAYS * 86_400))
    started_at = None
    if status != SessionStatus.CREATED:
        started_at = created_at + timedelta(seconds=rng.uniform(1, 60))
    stopped_at = None
    if status in (SessionStatus.STOPPED, SessionStatus.FAILED) and started_at is not None:
        stopped_at = started_at + recorded + timedelta(seconds=1)
    waiting_chunks = 0
    if status in (SessionStatus.RECORDING, SessionStatus.PAUSED):
        waiting_chunks = min(chunk_count, rng.randint(0, MAX_WAITING_CHUNKS))
    last_chunk_size = chunk_size
    if status == SessionStatus.STOPPED:
        last_chunk_size = rng.randint(1, chunk_size)
    return SessionPlan(
        id=random_uuid(rng),
        index=index,
        status=status,
        chunk_count=chunk_count,
        chunk_size=chunk_size,
        last_chunk_size=last_chunk_size,
        algorithm=algorithm,
        compression_ratio=rng.uniform(0.05, 0.4) if compressible else 1.0,
        failure_rate=FAILURE_RATES.get(status, DEFAULT_FAILURE_RATE),
        waiting_chunks=waiting_chunks,
        chunk_interval=chunk_interval,
        created_at=created_at,
        started_at=started_at,
        stopped_at=stopped_at,
    )


def plan_sessions(rng: random.Random, *, sessions: int, chunks: int) -> list[SessionPlan]:
    """The sessions to generate, the deep one first."""
    statuses = session_statuses(rng, sessions)
    counts = chunk_counts(rng, statuses, chunks)
    now = datetime.now(UTC)
    return [
        plan_session(rng, index=index, status=status, chunk_count=count, now=now)
        for index, (status, count) in enumerate(zip(statuses, counts, strict=True))
    ]


def session_row(plan: SessionPlan, *, owner_id: int, rng: random.Random) -> SessionRow:
    host = f"rdp-{rng.randrange(250):03d}.corp.example"
    return SessionRow(
        id=plan.id,
        name=f"bench session {plan.index} on {host}",
        owner_id=owner_id,
        host=host,
        metadata=json.dumps({"recorder": "bench.api", "index": plan.index}),
        status=plan.status,
        chunk_size=plan.chunk_size,
        compression_algorithm=plan.algorithm,
        compression_level=CODEC_LEVELS[plan.algorithm],
        retention_days=None,
        legal_hold=False,
        created_at=plan.created_at,
        updated_at=plan.stopped_at or plan.started_at or plan.created_at,
        started_at=plan.started_at,
        stopped_at=plan.stopped_at,
        chunk_count=0,
        size=0,
        compressed_size=0,
        chunks_received=0,
        chunks_processing=0,
        chunks_stored=0,
        chunks_failed=0,
        backlog_bytes=0,
        processing_us=0,
        ingest_mode=IngestMode.CHUNKS if plan.chunk_count else IngestMode.UNDECIDED,
        stream_offset=0,
        merkle_root="",
    )


def chunk_status(plan: SessionPlan, sequence: int, rng: random.Random) -> str:
    """The last `waiting_chunks` wait (the first of them in processing while recording)."""
    first_waiting = plan.chunk_count - plan.waiting_chunks
    if sequence == first_waiting and plan.status == SessionStatus.RECORDING:
        return ChunkStatus.PROCESSING
    if sequence >= first_waiting:
        return ChunkStatus.RECEIVED
    return ChunkStatus.FAILED if rng.random() < plan.failure_rate else ChunkStatus.STORED


def stored_chunk_row(
    plan: SessionPlan, *, sequence: int, size: int, created_at: datetime, rng: random.Random
) -> ChunkRow:
    """A chunk the pipeline stored at about the session's ratio; `none` if it did not shrink."""
    chunk_id, sha256 = random_uuid(rng), random_sha256(rng)
    compressed_size = round(size * plan.compression_ratio * rng.uniform(0.8, 1.2))
    algorithm, stored_sha256 = plan.algorithm, random_sha256(rng)
    if compressed_size >= size or plan.algorithm == CompressionAlgorithm.NONE:
        algorithm, compressed_size, stored_sha256 = CompressionAlgorithm.NONE, size, sha256
    processing_us = max(1, round(size / rng.uniform(50, 400)))
    return ChunkRow(
        id=chunk_id,
        session_id=plan.id,
        sequence=sequence,
        size=size,
        sha256=sha256,
        status=ChunkStatus.STORED,
        spool_key=f"{plan.id}/{chunk_id}.raw",
        algorithm=algorithm,
        compressed_size=max(compressed_size, 1),
        stored_sha256=stored_sha256,
        storage_key=f"{plan.id}/{sequence:012d}.{algorithm}",
        error="",
        attempts=1,
        processing_ms=processing_us / 1000,
        created_at=created_at,
        claimed_at=created_at,
        stored_at=created_at + timedelta(microseconds=processing_us),
    )


def unstored_chunk_row(
    plan: SessionPlan,
    *,
    sequence: int,
    size: int,
    status: str,
    created_at: datetime,
    rng: random.Random,
) -> ChunkRow:
    """A chunk waiting for the pipeline, in it, or failed by it."""
    chunk_id = random_uuid(rng)
    failed = status == ChunkStatus.FAILED
    return ChunkRow(
        id=chunk_id,
        session_id=plan.id,
        sequence=sequence,
        size=size,
        sha256=random_sha256(rng),
        status=status,
        spool_key=f"{plan.id}/{chunk_id}.raw",
        algorithm=None,
        compressed_size=None,
        stored_sha256="",
        storage_key="",
        error=f"The spooled bytes of chunk {sequence} are missing." if failed else "",
        attempts={ChunkStatus.RECEIVED: 0, ChunkStatus.PROCESSING: 1}.get(status, 3),
        processing_ms=None,
        created_at=created_at,
        claimed_at=None if status == ChunkStatus.RECEIVED else created_at,
        stored_at=None,
    )


def chunk_rows(plan: SessionPlan, rng: random.Random) -> Iterator[ChunkRow]:
    started_at = plan.started_at or plan.created_at
    for sequence in range(plan.chunk_count):
        size = plan.last_chunk_size if sequence == plan.chunk_count - 1 else plan.chunk_size
        created_at = started_at + plan.chunk_interval * sequence
        status = chunk_status(plan, sequence, rng)
        if status == ChunkStatus.STORED:
            yield stored_chunk_row(
                plan, sequence=sequence, size=size, created_at=created_at, rng=rng
            )
        else:
            yield unstored_chunk_row(
                plan, sequence=sequence, size=size, status=status, created_at=created_at, rng=rng
            )


def copy_rows(
    cursor: psycopg.Cursor, table: str, columns: tuple[str, ...]
) -> AbstractContextManager[psycopg.Copy]:
    return cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")


def copy_chunks(
    cursor: psycopg.Cursor, plans: list[SessionPlan], rng: random.Random
) -> dict[uuid.UUID, str]:
    """COPY every session's chunks; return the Merkle roots of the stopped (sealed) sessions."""
    total = sum(plan.chunk_count for plan in plans)
    written, started = 0, time.perf_counter()
    roots = {}
    with copy_rows(cursor, "chunks_app_chunk", ChunkRow._fields) as copy:
        for plan in plans:
            hashes = []
            for row in chunk_rows(plan, rng):
                copy.write_row(row)
                hashes.append(row.sha256)
                written += 1
                if written % PROGRESS_EVERY_CHUNKS == 0:
                    elapsed = time.perf_counter() - started
                    progress(f"chunks: {written:,} of {total:,} ({elapsed:.1f} s)")
            if plan.status == SessionStatus.STOPPED and hashes:
                roots[plan.id] = merkle_root(hashes)
    return roots


SESSION_TOTALS_SQL = """
UPDATE sessions_app_session AS session SET
    chunk_count = totals.chunk_count,
    size = totals.size,
    compressed_size = totals.compressed_size,
    chunks_received = totals.chunks_received,
    chunks_processing = totals.chunks_processing,
    chunks_stored = totals.chunks_stored,
    chunks_failed = totals.chunks_failed,
    backlog_bytes = totals.backlog_bytes,
    processing_us = totals.processing_us,
    last_data_at = totals.last_data_at
FROM (
    SELECT
        session_id,
        count(*) AS chunk_count,
        sum(size) AS size,
        coalesce(sum(compressed_size) FILTER (WHERE status = 'stored'), 0) AS compressed_size,
        count(*) FILTER (WHERE status = 'received') AS chunks_received,
        count(*) FILTER (WHERE status = 'processing') AS chunks_processing,
        count(*) FILTER (WHERE status = 'stored') AS chunks_stored,
        count(*) FILTER (WHERE status = 'failed') AS chunks_failed,
        coalesce(sum(size) FILTER (WHERE status IN ('received', 'processing')), 0)
            AS backlog_bytes,
        coalesce(sum(round(processing_ms * 1000)) FILTER (WHERE status = 'stored'), 0)
            AS processing_us,
        max(created_at) AS last_data_at
    FROM chunks_app_chunk
    GROUP BY session_id
) AS totals
WHERE session.id = totals.session_id
"""

MERKLE_ROOTS_SQL = """
UPDATE sessions_app_session AS session SET merkle_root = sealed.merkle_root
FROM unnest(%s::uuid[], %s::text[]) AS sealed (id, merkle_root)
WHERE session.id = sealed.id
"""

BYTE_TOTALS_SQL = """
SELECT coalesce(sum(size), 0), coalesce(sum(compressed_size), 0), coalesce(sum(backlog_bytes), 0)
FROM sessions_app_session
"""


def processing_buckets() -> list[tuple[str, float]]:
    """The processing-time histogram's bucket labels and bounds (in ms), as the app keeps them.

    Imported here, once Django is set up: the module needs the app registry.
    """
    from sessions_app.tallies import PROCESSING_BUCKETS, bucket_label

    return [(bucket_label(bound), bound * 1000) for bound in PROCESSING_BUCKETS]


def codec_counters(cursor: psycopg.Cursor) -> dict[str, int]:
    """Bytes stored and the processing-time histogram of the stored chunks, by codec."""
    buckets = processing_buckets()
    bucket_columns = ", ".join("count(*) FILTER (WHERE processing_ms <= %s)" for _ in buckets)
    query = f"""
        SELECT algorithm, sum(compressed_size), count(*), sum(round(processing_ms * 1000)),
            {bucket_columns}
        FROM chunks_app_chunk WHERE status = 'stored' GROUP BY algorithm
    """
    counters: dict[str, int] = {}
    for algorithm, stored_bytes, count, sum_us, *in_buckets in cursor.execute(
        query, [bound for _, bound in buckets]
    ):
        counters[f"store.bytes_total.{algorithm}"] = stored_bytes
        counters[f"processing.count.{algorithm}"] = count
        counters[f"processing.sum_us.{algorithm}"] = int(sum_us)
        for (label, _), in_bucket in zip(buckets, in_buckets, strict=True):
            counters[f"processing.bucket.{algorithm}.{label}"] = in_bucket
    return counters


def system_counters(cursor: psycopg.Cursor) -> dict[str, int]:
    """Every `lucid_counter` row, from the sessions' totals and the stored chunks."""
    counters = {f"sessions.{status}": 0 for status in SessionStatus.values}
    counters.update({f"chunks.{status}": 0 for status in ChunkStatus.values})
    for table, kind in (("sessions_app_session", "sessions"), ("chunks_app_chunk", "chunks")):
        for status, count in cursor.execute(
            f"SELECT status, count(*) FROM {table} GROUP BY status"
        ):
            counters[f"{kind}.{status}"] = count
    raw, stored, backlog = cursor.execute(BYTE_TOTALS_SQL).fetchone()
    counters.update(
        {
            "chunks.raw_bytes": raw,
            "chunks.stored_bytes": stored,
            "chunks.backlog_bytes": backlog,
            "ingest.bytes_total": raw,
        }
    )
    counters.update(codec_counters(cursor))
    return counters


def record_totals(cursor: psycopg.Cursor, merkle_roots: dict[uuid.UUID, str]) -> None:
    """Fill the running totals from the rows, seal the stopped sessions, add their pipelines."""
    cursor.execute(SESSION_TOTALS_SQL)
    cursor.execute(MERKLE_ROOTS_SQL, [list(merkle_roots), list(merkle_roots.values())])
    counters = system_counters(cursor)
    cursor.execute("DELETE FROM lucid_counter")
    cursor.executemany(
        "INSERT INTO lucid_counter (key, value) VALUES (%s, %s)", list(counters.items())
    )
    cursor.execute(
        "INSERT INTO pipeline_app_pipeline (session_id, state, last_error, updated_at)"
        " SELECT id, 'running', '', now() FROM sessions_app_session"
    )


def generate_data(*, sessions: int, chunks: int) -> None:
    """Sessions of the bench user, their chunks, totals and pipelines, in one transaction."""
    rng = random.Random(SEED)
    plans = plan_sessions(rng, sessions=sessions, chunks=chunks)
    started = time.perf_counter()
    with psycopg.connect(DATABASE_URL) as connection, connection.cursor() as cursor:
        (owner_id,) = cursor.execute(
            "SELECT id FROM auth_user WHERE username = %s", [BENCH_USER.username]
        ).fetchone()
        with copy_rows(cursor, "sessions_app_session", SessionRow._fields) as copy:
            for plan in plans:
                copy.write_row(session_row(plan, owner_id=owner_id, rng=rng))
        progress(f"sessions: {sessions:,} ({time.perf_counter() - started:.1f} s)")
        merkle_roots = copy_chunks(cursor, plans, rng)
        progress(f"running totals and counters ({time.perf_counter() - started:.1f} s)")
        record_totals(cursor, merkle_roots)
    progress(f"committed ({time.perf_counter() - started:.1f} s)")
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    progress(f"vacuumed and analyzed ({time.perf_counter() - started:.1f} s)")


# --- The database -------------------------------------------------------------------------------


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


def prepare_database(options: argparse.Namespace, environment: dict[str, str], logs: Path) -> None:
    """A migrated bench database holding the data: kept if asked and complete, else generated."""
    wanted = DataShape(options.sessions, options.chunks, DEEP_SESSION_CHUNKS)
    reuse = options.keep_database and existing_data() == wanted
    if reuse:
        progress(f"reusing database {DATABASE_NAME}")
    else:
        progress(f"creating database {DATABASE_NAME}")
        recreate_database()
    run_manage_command(["migrate", "--noinput"], environment, logs / "manage.log")
    run_manage_command(["ensure_superuser"], environment, logs / "manage.log")
    if not reuse:
        progress(f"generating {options.sessions:,} sessions and {options.chunks:,} chunks")
        generate_data(sessions=options.sessions, chunks=options.chunks)


def configure_django(environment: dict[str, str]) -> None:
    """Set up Django in this process on the bench database, for the app's own constants."""
    for name in (
        "DATABASE_URL",
        "LUCID_STORAGE_PATH",
        "LUCID_CHUNK_STORE_PATH",
        "DJANGO_STATIC_ROOT",
    ):
        os.environ[name] = environment[name]
    os.environ["DJANGO_SETTINGS_MODULE"] = "lucid.settings"
    django.setup()


def bench_ids() -> tuple[list[str], str]:
    """Every session id, and the id of the session with the most chunks."""
    with psycopg.connect(DATABASE_URL) as connection:
        ids = [str(row[0]) for row in connection.execute("SELECT id FROM sessions_app_session")]
        (deep_id,) = connection.execute(
            "SELECT id FROM sessions_app_session ORDER BY chunk_count DESC LIMIT 1"
        ).fetchone()
    return ids, str(deep_id)


# --- The service --------------------------------------------------------------------------------


def bench_environment(workdir: Path, port: int) -> dict[str, str]:
    """The service's environment: the bench database, no broker, REDIS_URL if the caller has one."""
    environment = service_environment(
        workdir, port=port, workers=GUNICORN_WORKERS, credentials=BENCH_USER
    )
    environment["DATABASE_URL"] = DATABASE_URL
    environment.pop("CELERY_BROKER_URL", None)
    return environment


def start_gunicorn(
    environment: dict[str, str], logs: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    command = [str(VENV_BIN / "gunicorn"), "lucid.wsgi", "--config", "lucid/gunicorn.conf.py"]
    command.append("--no-control-socket")
    server = start_process(command, environment, logs / "gunicorn.log")
    processes.append(server)
    wait_for_port(int(environment["PORT"]), server, logs / "gunicorn.log")


# --- Measurements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A measured endpoint: its name and the path of each request (drawn from a seeded rng)."""

    name: str
    path: Callable[[random.Random], str]


@dataclass(frozen=True)
class Latency:
    endpoint: str
    requests: int
    p50_ms: float
    p99_ms: float


def fetch(client: ApiClient, path: str) -> float:
    """GET `path` and read the whole answer, which must be 200; return the seconds it took."""
    started = time.perf_counter()
    response = client.send("GET", path)
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise UnexpectedResponse("GET", path, response.status, body)
    return elapsed


def client_latencies(
    port: int,
    token: str,
    endpoint: Endpoint,
    *,
    seed: int,
    warm_up: int,
    count: int,
    start_together: threading.Barrier,
) -> list[float]:
    """One client: warm up on its own connection, wait for the others, time `count` requests."""
    rng = random.Random(seed)
    client = ApiClient(port, token)
    try:
        for _ in range(warm_up):
            fetch(client, endpoint.path(rng))
        start_together.wait()
        return [fetch(client, endpoint.path(rng)) for _ in range(count)]
    except BaseException:
        start_together.abort()
        raise
    finally:
        client.close()


def timed_requests(
    port: int,
    token: str,
    endpoint: Endpoint,
    *,
    requests: int,
    clients: int,
    warm_up: int,
    rng: random.Random,
) -> list[float]:
    """The latencies of `requests` requests from `clients` concurrent clients, in seconds."""
    shares = [requests // clients + (client < requests % clients) for client in range(clients)]
    start_together = threading.Barrier(clients)
    with ThreadPoolExecutor(clients) as pool:
        runs = [
            pool.submit(
                client_latencies,
                port,
                token,
                endpoint,
                seed=rng.getrandbits(64),
                warm_up=warm_up,
                count=share,
                start_together=start_together,
            )
            for share in shares
        ]
        return [latency for run in runs for latency in run.result()]


def measure(
    port: int, refresh_token: str, endpoints: list[Endpoint], *, requests: int, clients: int
) -> list[Latency]:
    """Each endpoint's latencies, gathered in ROUNDS rounds that each visit every endpoint.

    Passing load elsewhere on the machine then falls on every endpoint alike. The first round
    warms each endpoint up on every client's connection.
    """
    samples: dict[str, list[float]] = {endpoint.name: [] for endpoint in endpoints}
    rng = random.Random(SEED)
    for round_number in range(ROUNDS):
        warm_up = WARM_UP_REQUESTS_PER_CLIENT if round_number == 0 else 1
        round_requests = requests // ROUNDS + (round_number < requests % ROUNDS)
        progress(f"measuring: round {round_number + 1} of {ROUNDS}")
        for endpoint in endpoints:
            token = fresh_access_token(port, refresh_token)
            samples[endpoint.name] += timed_requests(
                port,
                token,
                endpoint,
                requests=round_requests,
                clients=clients,
                warm_up=warm_up,
                rng=rng,
            )
    return [
        Latency(
            name,
            len(latencies),
            percentile(latencies, 0.50) * 1000,
            percentile(latencies, 0.99) * 1000,
        )
        for name, latencies in samples.items()
    ]


def path_of(url: str) -> str:
    """The path and query of an absolute `next` link, to request on our own connection."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def deep_page_path(port: int, token: str, first_page: str) -> str:
    """Follow `next` from `first_page` to page DEEP_PAGE; check where it starts."""
    client = ApiClient(port, token)
    path, started = first_page, time.perf_counter()
    try:
        for page in range(2, DEEP_PAGE + 1):
            answer = client.call("GET", path)
            if answer["next"] is None:
                raise BenchmarkError(f"{first_page} has only {page - 1} pages")
            path = path_of(answer["next"])
            if page % WALK_PROGRESS_EVERY_PAGES == 0:
                elapsed = time.perf_counter() - started
                progress(f"page {page:,} reached ({elapsed / (page - 1) * 1000:.1f} ms a page)")
        first_sequence = client.call("GET", path)["results"][0]["sequence"]
    finally:
        client.close()
    if first_sequence != (DEEP_PAGE - 1) * PAGE_SIZE:
        raise BenchmarkError(f"page {DEEP_PAGE} starts at sequence {first_sequence}")
    return path


def obtain_refresh_token(port: int) -> str:
    """A refresh token of the bench user: the token endpoint is throttled, so one per run."""
    client = ApiClient(port)
    try:
        answer = client.call(
            "POST",
            f"{API}/auth/token",
            {"username": BENCH_USER.username, "password": BENCH_USER.password},
        )
    finally:
        client.close()
    return answer["refresh"]


def fresh_access_token(port: int, refresh_token: str) -> str:
    """An access token valid for the next minutes (they expire within a long run)."""
    client = ApiClient(port)
    try:
        answer = client.call("POST", f"{API}/auth/token/refresh", {"refresh": refresh_token})
    finally:
        client.close()
    return answer["access"]


def check_trivial_view(port: int, token: str) -> None:
    client = ApiClient(port, token)
    try:
        username = client.call("GET", f"{API}/auth/me")["username"]
    finally:
        client.close()
    if username != BENCH_USER.username:
        raise BenchmarkError(f"{API}/auth/me says {username!r}, not {BENCH_USER.username!r}")


def endpoints(port: int, token: str, session_ids: list[str], deep_id: str) -> list[Endpoint]:
    """The measured endpoints, the trivial view first; walks to the deep page."""
    first_page = f"{API}/sessions/{deep_id}/chunks"
    progress(f"following `next` to page {DEEP_PAGE:,} of session {deep_id}")
    deep_page = deep_page_path(port, token, first_page)
    return [
        Endpoint("GET /auth/me (trivial)", lambda rng: f"{API}/auth/me"),
        Endpoint("GET /sessions/{id}", lambda rng: f"{API}/sessions/{rng.choice(session_ids)}"),
        Endpoint("GET /sessions/{deep}/chunks", lambda rng: first_page),
        Endpoint(f"  same, page {DEEP_PAGE:,}", lambda rng: deep_page),
        Endpoint("GET /sessions/statistics", lambda rng: f"{API}/sessions/statistics"),
    ]


# --- Report -------------------------------------------------------------------------------------


def print_table(latencies: list[Latency]) -> None:
    baseline = latencies[0].p99_ms
    width = max(len(latency.endpoint) for latency in latencies)
    print(f"{'endpoint'.ljust(width)}  requests  p50 ms  p99 ms  p99 / trivial")
    for latency in latencies:
        print(
            f"{latency.endpoint.ljust(width)}  {latency.requests:8d}  {latency.p50_ms:6.1f}"
            f"  {latency.p99_ms:6.1f}  {latency.p99_ms / baseline:13.2f}"
        )


def verdict(holds: bool) -> str:
    return "holds" if holds else "DOES NOT HOLD"


def print_targets(latencies: list[Latency]) -> None:
    trivial, _, first_page, deep_page, statistics = latencies
    worst = max(latencies[1:], key=lambda latency: latency.p99_ms)
    worst_ratio = worst.p99_ms / trivial.p99_ms
    print(
        f"target: every p99 / trivial <= {RATIO_TARGET:g}: {verdict(worst_ratio <= RATIO_TARGET)}"
        f" (highest {worst_ratio:.2f}, {worst.endpoint.strip()})"
    )
    print(
        f"target: statistics p99 < {STATISTICS_P99_TARGET_MS:g} ms:"
        f" {verdict(statistics.p99_ms < STATISTICS_P99_TARGET_MS)} ({statistics.p99_ms:.1f} ms)"
    )
    depth_ratio = deep_page.p99_ms / first_page.p99_ms
    print(
        f"target: page {DEEP_PAGE:,} p99 / page 1 p99 about 1 (<= {DEPTH_RATIO_TARGET:g}),"
        f" independent of depth: {verdict(depth_ratio <= DEPTH_RATIO_TARGET)} ({depth_ratio:.2f})"
    )


def print_report(latencies: list[Latency], options: argparse.Namespace) -> None:
    print_table(latencies)
    print_targets(latencies)
    cache = "redis" if os.environ.get("REDIS_URL") else "local memory"
    load = ", ".join(f"{average:.1f}" for average in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python"
        f" {platform.python_version()}, cache: {cache}, load average {load} (1, 5, 15 min;"
        " this run included)"
    )
    print(
        f"run: {options.sessions:,} sessions, {options.chunks:,} chunks ({DEEP_SESSION_CHUNKS:,}"
        f" in the deep one), {GUNICORN_WORKERS} gunicorn workers, {options.clients} client"
        f" threads, {options.requests:,} requests per endpoint in {ROUNDS} rounds after"
        f" {WARM_UP_REQUESTS_PER_CLIENT} warm-up requests per client and endpoint"
    )


# --- Main ---------------------------------------------------------------------------------------


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    summary = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=summary)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions to generate")
    parser.add_argument("--chunks", type=int, default=1_000_000, help="chunks to generate")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--requests", type=int, default=2_000, help="timed requests per endpoint")
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help=f"reuse {DATABASE_NAME} if it holds the data, and keep it afterwards",
    )
    options = parser.parse_args(argv)
    if options.sessions < 2:
        parser.error("--sessions must be at least 2: the deep session and another")
    if options.chunks < DEEP_SESSION_CHUNKS:
        parser.error(f"--chunks must be at least {DEEP_SESSION_CHUNKS:,}, the deep session's")
    if options.clients < 1 or options.requests < 1:
        parser.error("--clients and --requests must be at least 1")
    return options


def run(
    options: argparse.Namespace, workdir: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port(0)
    environment = bench_environment(workdir, port)
    configure_django(environment)
    logs = workdir / "logs"
    logs.mkdir()
    prepare_database(options, environment, logs)
    session_ids, deep_id = bench_ids()
    progress(f"starting the service in {workdir}")
    start_gunicorn(environment, logs, processes)
    refresh_token = obtain_refresh_token(port)
    token = fresh_access_token(port, refresh_token)
    check_trivial_view(port, token)
    measured = endpoints(port, token, session_ids, deep_id)
    latencies = measure(
        port, refresh_token, measured, requests=options.requests, clients=options.clients
    )
    print_report(latencies, options)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        check_server()
    except BenchmarkError as error:
        print(f"bench.api: {error}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="lucid-bench-api-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        run(options, workdir, processes)
    except BenchmarkError as error:
        print(f"bench.api: {error}", file=sys.stderr)
        return 1
    finally:
        for process in reversed(processes):
            stop_process(process)
        if options.keep_database:
            progress(f"kept database {DATABASE_NAME}")
        else:
            drop_database()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
