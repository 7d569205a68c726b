"""Verification of what is kept: every chunk re-read, both hashes checked, Merkle roots recomputed.

Reads only: damage is reported, never repaired here (restore the session from a backup).
"""

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import BinaryIO

from chunks_app.codecs import CodecError, get_codec
from chunks_app.merkle import merkle_root
from chunks_app.models import Chunk
from chunks_app.spool import get_spool
from chunks_app.storage import ChunkNotFoundError, ChunkStoreError, get_chunk_store
from core.choices import ChunkStatus
from core.errors import NotFound
from core.progress import Progress
from sessions_app.models import Session

READ_PIECE = 4 * 1024 * 1024


@dataclass(frozen=True)
class Damage:
    session_id: uuid.UUID
    sequence: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.session_id}" + (
            f" chunk {self.sequence}" if self.sequence is not None else ""
        )
        return f"{where}: {self.problem}"


@dataclass
class VerifyReport:
    sessions: int = 0
    chunks: int = 0
    bytes_read: int = 0
    damages: list[Damage] = field(default_factory=list)


def _sha256_of(stream: BinaryIO) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    with closing(stream):
        while piece := stream.read(READ_PIECE):
            hasher.update(piece)
            size += len(piece)
    return hasher.hexdigest(), size


def _chunk_problems(chunk: Chunk) -> Iterator[str]:
    if chunk.status == ChunkStatus.STORED:
        store, key = get_chunk_store(), chunk.storage_key
        stored_sha256, _ = _sha256_of(store.open(key))
        if stored_sha256 != chunk.stored_sha256:
            yield f"stored bytes do not match their sha256 ({key})"
            return
        raw = get_codec(chunk.algorithm).open_decompressed(store.open(key))
    else:
        raw = get_spool().open(chunk.spool_key)
    raw_sha256, size = _sha256_of(raw)
    if size != chunk.size or raw_sha256 != chunk.sha256:
        yield f"raw bytes do not match the chunk's sha256 and size ({size} of {chunk.size} bytes)"


def _verify_chunk(chunk: Chunk) -> list[str]:
    try:
        return list(_chunk_problems(chunk))
    except ChunkNotFoundError as error:
        return [f"file missing: {error}"]
    except (ChunkStoreError, CodecError) as error:
        return [f"unreadable: {error}"]


def chunks_verify(
    *, session_ids: list[uuid.UUID] | None = None, progress: Progress | None = None
) -> VerifyReport:
    """Check every chunk of the sessions (all by default) and each sealed Merkle root."""
    sessions = Session.objects.order_by("created_at")
    if session_ids:
        sessions = sessions.filter(pk__in=session_ids)
        missing = set(session_ids) - set(sessions.values_list("pk", flat=True))
        if missing:
            raise NotFound(f"No session with id {', '.join(map(str, sorted(missing)))}.")
    report = VerifyReport()
    for session in sessions.iterator():
        report.sessions += 1
        hashes = []
        for chunk in Chunk.objects.filter(session=session).order_by("sequence").iterator():
            report.chunks += 1
            report.bytes_read += chunk.size
            hashes.append(chunk.sha256)
            report.damages += [
                Damage(session.pk, chunk.sequence, problem) for problem in _verify_chunk(chunk)
            ]
            if progress:
                progress.advance()
        if session.merkle_root and merkle_root(hashes) != session.merkle_root:
            report.damages.append(
                Damage(session.pk, None, "Merkle root of the chunks differs from the sealed one")
            )
    return report
