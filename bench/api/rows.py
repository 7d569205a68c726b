"""The rows of the generated sessions and chunks, as COPY takes them."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

from bench.api.plan import CODEC_LEVELS, SessionPlan, random_uuid
from core.choices import ChunkStatus, CompressionAlgorithm
from sessions_app.choices import IngestMode, SessionStatus


class SessionRow(NamedTuple):
    """A row of sessions_app_session as COPY takes it; the running totals are filled later."""

    id: uuid.UUID
    name: str
    owner_id: int
    host: str
    remote_user: str
    client_address: str | None
    metadata: str
    content_type: str
    duration_ms: int | None
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
    chunks_damaged: int
    backlog_bytes: int
    processing_us: int
    ingest_mode: str
    stream_offset: int
    stream_part: str
    merkle_root: str
    complete: bool


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
    offset: int
    error: str
    attempts: int
    processing_ms: float | None
    created_at: datetime
    claimed_at: datetime | None
    stored_at: datetime | None


def random_sha256(rng: random.Random) -> str:
    return rng.randbytes(32).hex()


def session_row(plan: SessionPlan, *, owner_id: int, rng: random.Random) -> SessionRow:
    """The session's row; the model is imported here, once Django is set up."""
    from sessions_app.models import DEFAULT_CONTENT_TYPE

    host = f"rdp-{rng.randrange(250):03d}.corp.example"
    return SessionRow(
        id=plan.id,
        name=f"bench session {plan.index} on {host}",
        owner_id=owner_id,
        host=host,
        remote_user=f"user{rng.randrange(500):03d}@corp.example",
        client_address=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        metadata=json.dumps({"recorder": "bench.api", "index": plan.index}),
        content_type=DEFAULT_CONTENT_TYPE,
        duration_ms=None,
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
        chunks_damaged=0,
        backlog_bytes=0,
        processing_us=0,
        ingest_mode=IngestMode.CHUNKS if plan.chunk_count else IngestMode.UNDECIDED,
        stream_offset=0,
        stream_part="",
        merkle_root="",
        complete=plan.status == SessionStatus.STOPPED,
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
        offset=sequence * plan.chunk_size,
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
        offset=sequence * plan.chunk_size,
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
