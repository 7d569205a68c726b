"""The sessions to generate: how many chunks each holds, of what size, codec and status."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.choices import CompressionAlgorithm
from core.sizes import MIB
from sessions_app.choices import SessionStatus

DEEP_SESSION_CHUNKS = 300_000
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


def random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(bytes=rng.randbytes(16), version=4)


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
