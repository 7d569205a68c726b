"""Verification of what is kept: every chunk re-read, both hashes checked, Merkle roots recomputed.

Damage is reported and the chunk marked `damaged`, never repaired here (`restore --repair`
brings it back from a backup).
"""

import hashlib
import uuid
from dataclasses import dataclass, field

from chunks_app.merkle import merkle_root
from chunks_app.models import Chunk
from chunks_app.selectors import ChunkDamaged, chunk_read_raw
from chunks_app.services import chunk_mark_damaged
from chunks_app.storage import ChunkStoreError
from core.encryption import KeyNotConfigured
from core.errors import NotFound
from core.progress import Progress
from sessions_app.models import Session


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


def _damage_of(chunk: Chunk) -> str | None:
    """What is wrong with the chunk's kept bytes or their decoding; None when nothing is."""
    try:
        raw = chunk_read_raw(chunk=chunk)
    except ChunkDamaged as damage:
        return damage.reason
    if hashlib.sha256(raw).hexdigest() != chunk.sha256:
        return "hash mismatch: the decoded bytes do not match the chunk's sha256"
    return None


def _verify_chunk(chunk: Chunk) -> list[str]:
    """The chunk's problems; a damaged chunk is marked so, one that cannot be read now (a store
    failing, its key not configured) is reported only."""
    try:
        damage = _damage_of(chunk)
    except (ChunkStoreError, KeyNotConfigured) as error:
        return [f"unreadable: {error}"]
    if damage is None:
        return []
    chunk_mark_damaged(chunk_id=chunk.pk, reason=damage)
    return [damage]


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
