"""Filling the benchmark's stopped sessions in this process, before the service starts.

Django is set up on the service's database and chunk store first (`configure_django`); the app's
modules are imported inside the functions for that reason.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable

from bench.errors import BenchmarkError
from bench.harness import progress
from bench.seek.data import chunk_bytes

BATCH_CHUNKS = 500
PROGRESS_EVERY_CHUNKS = 2_000


def stored_chunks(session, *, session_index: int, first: int, count: int) -> list:
    """Chunks `first`.. of `session` as uploads in order and the pipeline leave them
    uncompressed: the bytes in the chunk store (fsynced) under the pipeline's key, the row
    `stored` and placed in the recording."""
    from django.utils import timezone

    from chunks_app.models import Chunk
    from chunks_app.sealing import stored_key, upload_spool_key
    from chunks_app.storage import get_chunk_store
    from core.choices import ChunkStatus, CompressionAlgorithm

    store, chunks = get_chunk_store(), []
    for sequence in range(first, first + count):
        data = chunk_bytes(session_index, sequence, session.chunk_size)
        started = time.perf_counter()
        key = stored_key(
            session_id=session.pk,
            sequence=sequence,
            algorithm=CompressionAlgorithm.NONE,
            key_id=None,
        )
        store.put(key, [data])
        sha256 = hashlib.sha256(data).hexdigest()
        chunk_id, now = uuid.uuid4(), timezone.now()
        chunks.append(
            Chunk(
                id=chunk_id,
                session=session,
                sequence=sequence,
                size=len(data),
                sha256=sha256,
                status=ChunkStatus.STORED,
                spool_key=upload_spool_key(session_id=session.pk, chunk_id=chunk_id),
                algorithm=CompressionAlgorithm.NONE,
                compressed_size=len(data),
                stored_sha256=sha256,
                storage_key=key,
                offset=sequence * session.chunk_size,
                attempts=1,
                processing_ms=(time.perf_counter() - started) * 1000,
                claimed_at=now,
                created_at=now,
                stored_at=now,
            )
        )
    return chunks


def tally_sum(items: Iterable) -> object:
    """One tally adding up `items`: the pipeline's per-chunk tallies applied once per batch."""
    from sessions_app.tallies import Tally

    total = Tally()
    for tally in items:
        for summed, deltas in ((total.session, tally.session), (total.system, tally.system)):
            for key, delta in deltas.items():
                summed[key] = summed.get(key, 0) + delta
    return total


def record_batch(session, chunks: list) -> None:
    """The rows, and the session's and the system's totals as receipt and processing add them."""
    from django.db import transaction

    from chunks_app.models import Chunk
    from core.choices import CompressionAlgorithm
    from sessions_app import tallies

    size = sum(chunk.size for chunk in chunks)
    processed = [
        tally
        for chunk in chunks
        for tally in (
            tallies.chunk_claimed(),
            tallies.chunk_stored(
                size=chunk.size,
                stored_size=chunk.compressed_size,
                algorithm=CompressionAlgorithm.NONE,
                seconds=chunk.processing_ms / 1000,
            ),
        )
    ]
    total = tally_sum([tallies.chunks_received(count=len(chunks), size=size), *processed])
    with transaction.atomic():
        Chunk.objects.bulk_create(chunks)
        tallies.tally_apply(session_id=session.pk, tally=total)


def stopped_session(*, owner: str, session_index: int, chunks: int, chunk_size: int) -> str:
    """The id of a new session of `chunks` stored chunks of `chunk_size`, stopped."""
    from django.contrib.auth import get_user_model

    from chunks_app.services import session_stop
    from core.choices import CompressionAlgorithm
    from sessions_app.choices import IngestMode
    from sessions_app.models import Session
    from sessions_app.services import session_create, session_start

    session = session_create(
        owner=get_user_model().objects.get(username=owner),
        name=f"bench.seek {chunks} chunks",
        chunk_size=chunk_size,
        compression_algorithm=CompressionAlgorithm.NONE,
    )
    session_start(session=session)
    Session.objects.filter(pk=session.pk).update(ingest_mode=IngestMode.CHUNKS)
    started = time.perf_counter()
    for first in range(0, chunks, BATCH_CHUNKS):
        count = min(BATCH_CHUNKS, chunks - first)
        record_batch(
            session, stored_chunks(session, session_index=session_index, first=first, count=count)
        )
        if (first + count) % PROGRESS_EVERY_CHUNKS == 0:
            elapsed = time.perf_counter() - started
            progress(f"  {first + count:,} of {chunks:,} chunks ({elapsed:.1f} s)")
    session = session_stop(session=Session.objects.get(pk=session.pk))
    if (session.chunk_count, session.size, session.complete) != (chunks, chunks * chunk_size, True):
        raise BenchmarkError(f"session {session.pk} is not as filled: {session.chunk_count} chunks")
    return str(session.pk)


def fill_sessions(*, owner: str, chunk_counts: list[int], chunk_size: int) -> list[str]:
    """The ids of the stopped sessions, one per count, the i-th filled with session index i."""
    from django.db import connections

    ids = []
    for index, chunks in enumerate(chunk_counts):
        progress(f"filling a session of {chunks:,} chunks of {chunk_size // 1024} KiB")
        ids.append(
            stopped_session(owner=owner, session_index=index, chunks=chunks, chunk_size=chunk_size)
        )
    connections.close_all()
    return ids
