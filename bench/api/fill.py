"""Filling the bench database: sessions and chunks by COPY, then their totals and counters."""

from __future__ import annotations

import random
import time
import uuid
from contextlib import AbstractContextManager

import psycopg

from bench.api.database import BENCH_USER, DATABASE_URL
from bench.api.plan import SessionPlan, plan_sessions
from bench.api.rows import ChunkRow, SessionRow, chunk_rows, session_row
from bench.harness import SEED, progress
from chunks_app.merkle import merkle_root
from core.choices import ChunkStatus
from sessions_app.choices import SessionStatus

PROGRESS_EVERY_CHUNKS = 100_000


def copy_rows(
    cursor: psycopg.Cursor, table: str, columns: tuple[str, ...]
) -> AbstractContextManager[psycopg.Copy]:
    names = ", ".join(f'"{column}"' for column in columns)  # quoted: `offset` is reserved
    return cursor.copy(f"COPY {table} ({names}) FROM STDIN")


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
