"""Verifying an archive whole, and planning what restoring each of its sessions would do."""

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.contrib.auth import get_user_model

from chunks_app.codecs import get_codec
from chunks_app.merkle import merkle_root
from chunks_app.models import Chunk, TimeMark
from core.choices import CompressionAlgorithm
from core.encryption import AuthenticationFailed, key_ring
from core.progress import ProgressFactory
from sessions_app.models import Session
from storage_app.backup.format import (
    CHUNK_MEMBER,
    CREATE,
    EXTEND,
    FORMAT,
    MANIFEST,
    MARKS_MAX_BYTES,
    MARKS_MEMBER,
    PROBLEMS_SHOWN,
    RECORD_MAX_BYTES,
    SESSION_MEMBER,
    TAIL_MEMBER,
    UNCHANGED,
    VERSION,
    ArchiveDamaged,
    ArchivedSession,
    BackupError,
    Mark,
    RestoreConflict,
    RestoreNeedsBase,
    RestoreNeedsKey,
    chunk_member_name,
    listing,
    marks_from_record,
    marks_member_name,
    record_check,
    sessions_from_manifest,
    tail_member_name,
)
from storage_app.backup.streams import (
    READ_PIECE,
    HashedReader,
    archive_members,
    archive_reading,
    archive_require,
    member_unsealed,
    mib_progress,
)

RESTORE_ADVICE = "Nothing was restored; restore another backup archive."


@dataclass
class VerifiedArchive:
    path: Path
    archive_id: str
    base_id: str | None
    created_at: str
    sessions: list[ArchivedSession]
    member_sha256: dict[str, str]
    owners_missing: list[str] = field(default_factory=list)

    def sessions_to(self, action: str) -> list[ArchivedSession]:
        return [session for session in self.sessions if session.action == action]


@dataclass
class _MemberDigest:
    """A member's size and sha256 (of its bytes before sealing, if sealed), the sha256 of its
    bytes as archived, and for chunks and stream tails the size and sha256 of the raw bytes."""

    sha256: str
    size: int
    archived_sha256: str
    raw_sha256: str | None = None
    raw_size: int | None = None


@dataclass
class _ArchiveScan:
    manifest: dict | None = None
    digests: dict[str, _MemberDigest] = field(default_factory=dict)
    records: dict[str, dict] = field(default_factory=dict)
    marks: dict[str, list[Mark]] = field(default_factory=dict)
    mark_counts: dict[str, int] = field(default_factory=dict)
    keys_missing: set[str] = field(default_factory=set)


def _whole_digest(data: bytes) -> _MemberDigest:
    sha256 = hashlib.sha256(data).hexdigest()
    return _MemberDigest(sha256, len(data), sha256)


def _chunk_digest(archived: HashedReader, stored: HashedReader, *, algorithm: str) -> _MemberDigest:
    """Hash a chunk or stream tail member's bytes as `archived`, and as they pass, the bytes
    before sealing (`stored`: the same reader if the member is plain) and, decompressing them,
    the raw bytes."""
    raw_hasher, raw_size = hashlib.sha256(), 0
    with closing(get_codec(algorithm).open_decompressed(stored)) as raw:
        while piece := raw.read(READ_PIECE):
            raw_hasher.update(piece)
            raw_size += len(piece)
    stored.drain()
    archived.drain()
    return _MemberDigest(
        stored.sha256, stored.size, archived.sha256, raw_hasher.hexdigest(), raw_size
    )


def _member_sequence(match: re.Match, record: dict) -> int:
    """The sequence a chunk or stream tail member is sealed for: a tail's is where its
    session's stream ends, as the session's record (the member before) says."""
    if sequence := match.groupdict().get("sequence"):
        return int(sequence)
    try:
        return record["stream_offset"] // record["chunk_size"]
    except (KeyError, TypeError, ZeroDivisionError):
        raise ArchiveDamaged(
            f"the record of session {match['session']} does not say where its stream ends"
        ) from None


def _member_digest(name: str, member: BinaryIO, match: re.Match, record: dict) -> _MemberDigest:
    """The digest of a chunk or stream tail member, unsealed if it is sealed (under a key that
    is configured); damage if it does not authenticate."""
    algorithm = match.groupdict().get("algorithm") or CompressionAlgorithm.NONE
    archived, key_id = HashedReader(member), match["key"]
    if key_id is None:
        return _chunk_digest(archived, archived, algorithm=algorithm)
    unsealed = member_unsealed(
        archived,
        session_id=uuid.UUID(match["session"]),
        sequence=_member_sequence(match, record),
        key_id=key_id,
    )
    try:
        return _chunk_digest(archived, HashedReader(unsealed), algorithm=algorithm)
    except AuthenticationFailed as error:
        raise ArchiveDamaged(
            f"member {name!r} fails authentication under key '{key_id}' ({error}): its bytes "
            "were changed after the backup was written"
        ) from None


def _marks_read(name: str, member: BinaryIO) -> tuple[bytes, list[Mark]]:
    data = member.read(MARKS_MAX_BYTES + 1)
    if len(data) > MARKS_MAX_BYTES:
        raise ArchiveDamaged(f"member {name!r} is too large for a list of time marks")
    try:
        return data, marks_from_record(data)
    except ValueError as error:
        raise ArchiveDamaged(
            f"member {name!r} is not a valid list of time marks: {error}"
        ) from None


def _archive_scan(archive: Path, *, progress: ProgressFactory | None) -> _ArchiveScan:
    """Read every member once: hashes, decompressed chunks, session records, the manifest.

    The time marks of sessions already in the database are kept, to compare with theirs.
    """
    scan = _ArchiveScan()
    current_session, current_record, current_known = None, {}, False
    read_progress = mib_progress(progress, "verify", archive)
    try:
        for name, member in archive_members(archive, on_read=read_progress):
            if scan.manifest is not None:
                raise ArchiveDamaged(f"member {name!r} follows the manifest, which must be last")
            if name in scan.digests:
                raise ArchiveDamaged(f"member {name!r} appears twice")
            if name == MANIFEST:
                data = member.read()
                scan.manifest = json.loads(data)
                scan.digests[name] = _whole_digest(data)
            elif match := SESSION_MEMBER.fullmatch(name):
                data = member.read(RECORD_MAX_BYTES + 1)
                if len(data) > RECORD_MAX_BYTES:
                    raise ArchiveDamaged(f"member {name!r} is too large for a session record")
                current_session, current_record = match["session"], json.loads(data)
                current_known = Session.objects.filter(pk=current_session).exists()
                scan.records[name] = current_record
                scan.digests[name] = _whole_digest(data)
            elif match := MARKS_MEMBER.fullmatch(name):
                if match["session"] != current_session:
                    raise ArchiveDamaged(f"member {name!r} is not next to its session's record")
                data, marks = _marks_read(name, member)
                scan.digests[name] = _whole_digest(data)
                scan.mark_counts[name] = len(marks)
                if current_known:
                    scan.marks[name] = marks
            elif match := CHUNK_MEMBER.fullmatch(name) or TAIL_MEMBER.fullmatch(name):
                if match["session"] != current_session:
                    raise ArchiveDamaged(f"member {name!r} is not next to its session's record")
                if match["key"] is not None and not key_ring().has(match["key"]):
                    scan.keys_missing.add(match["key"])
                    continue
                scan.digests[name] = _member_digest(name, member, match, current_record)
            else:
                raise ArchiveDamaged(f"member {name!r} is not part of a Lucid backup")
    finally:
        read_progress.finish()
    if scan.manifest is None:
        raise ArchiveDamaged("the manifest is missing: this is not a complete Lucid backup")
    return scan


def _session_problems(
    session: ArchivedSession, scan: _ArchiveScan, base_id: str | None
) -> Iterator[str]:
    """What in the archive contradicts the manifest about this session."""
    digest = scan.digests.get(session.member)
    if digest is None or session.member not in scan.records:
        yield f"the record of session {session.id} ({session.member}) is missing"
        return
    if digest.sha256 != session.sha256:
        yield f"the record of session {session.id} does not match its sha256"
        return
    record = scan.records[session.member]
    try:
        record_check(record, session_id=session.id)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        yield f"the record of session {session.id} is not valid: {error}"
        return
    for chunk in session.chunks:
        where = f"chunk {chunk.sequence} of session {chunk.session_id}"
        if chunk.in_base is not None:
            if chunk.in_base != base_id:
                yield f"{where} is said to be in archive {chunk.in_base}, which is not the base"
            continue
        digest = scan.digests.get(chunk.member)
        member = chunk_member_name(
            session_id=chunk.session_id,
            sequence=chunk.sequence,
            algorithm=chunk.algorithm,
            key_id=chunk.key_id,
        )
        if chunk.member != member or digest is None:
            yield f"{where} is missing ({chunk.member})"
        elif (digest.sha256, digest.size) != (chunk.stored_sha256, chunk.stored_size):
            yield f"{where} does not match its stored sha256 and size"
        elif (digest.raw_sha256, digest.raw_size) != (chunk.sha256, chunk.size):
            yield f"{where} does not decompress to its sha256 and size"
    marks = session.time_marks
    if marks is not None:
        digest = scan.digests.get(marks.member)
        if marks.member != marks_member_name(session_id=session.id) or digest is None:
            yield f"the time marks of session {session.id} are missing"
        elif (digest.sha256, scan.mark_counts[marks.member]) != (marks.sha256, marks.count):
            yield f"the time marks of session {session.id} do not match their sha256 and count"
    tail = session.stream_tail
    if tail is not None:
        digest = scan.digests.get(tail.member)
        member = tail_member_name(session_id=session.id, key_id=tail.key_id)
        if tail.member != member or digest is None:
            yield f"the stream tail of session {session.id} is missing"
        elif (digest.sha256, digest.size) != (tail.sha256, tail.size):
            yield f"the stream tail of session {session.id} does not match its sha256"
    sealed = record["merkle_root"]
    if sealed and merkle_root(session.sha256_by_sequence().values()) != sealed:
        yield f"the chunks of session {session.id} do not give its sealed Merkle root"


def _unlisted_members(sessions: list[ArchivedSession], scan: _ArchiveScan) -> list[str]:
    listed = {MANIFEST}
    for session in sessions:
        listed.add(session.member)
        listed.update(chunk.member for chunk in session.chunks if chunk.member)
        if session.stream_tail:
            listed.add(session.stream_tail.member)
        if session.time_marks:
            listed.add(session.time_marks.member)
    return sorted(set(scan.digests) - listed)


def _by_place(marks: Iterable[Mark]) -> dict[tuple[int, int], int]:
    """Each mark's time by its place (sequence, position)."""
    return {(sequence, position): time_ms for sequence, position, time_ms in marks}


def _plan(session: ArchivedSession) -> tuple[str | None, bool]:
    """Decide what restoring the session does; returns (a conflict, whether the base is needed).

    A session not in the database is created. One whose chunks and time marks all match is
    extended with the archive's newer chunks, marks and fields if the archive is ahead of it in
    chunks or stream bytes, and left alone otherwise.
    """
    existing = Session.objects.filter(pk=session.id).first()
    known = {
        row["sequence"]: row
        for row in Chunk.objects.filter(session_id=session.id).values(
            "sequence", "sha256", "stored_sha256"
        )
    }
    archived = session.sha256_by_sequence()
    needs_base = any(
        chunk.in_base is not None and chunk.sequence not in known for chunk in session.chunks
    )
    if existing is None:
        session.action = CREATE
        session.rows_to_write(set(archived))
        session.write_tail = session.stream_tail is not None
        return None, needs_base
    different = sorted(
        sequence
        for sequence, sha256 in archived.items()
        if sequence in known and known[sequence]["sha256"] != sha256
    )
    if different:
        return f"chunks {', '.join(map(str, different[:PROBLEMS_SHOWN]))} differ", needs_base
    if session.time_marks is not None and session.marks is None:
        return "it was created while the archive was verified; restore again", needs_base
    marks = _by_place(session.marks or [])
    marks_present = _by_place(
        TimeMark.objects.filter(session_id=session.id).values_list(
            "sequence", "position", "time_ms"
        )
    )
    if moved := sorted(
        place for place, time_ms in marks_present.items() if marks.get(place, time_ms) != time_ms
    ):
        places = listing([f"chunk {sequence} byte {position}" for sequence, position in moved])
        return f"the time marks differ at {places}", needs_base
    sealed = session.record["merkle_root"]
    if sealed and existing.merkle_root and sealed != existing.merkle_root:
        return "the sealed Merkle roots differ", needs_base
    missing = set(archived) - set(known)
    ahead = (
        bool(missing)
        or session.record["stream_offset"] > existing.stream_offset
        or bool(sealed and not existing.merkle_root)
    )
    if not ahead:
        session.action = UNCHANGED
        return None, False
    if set(known) - set(archived):
        return "the database holds chunks the archive does not", needs_base
    if set(marks_present) - set(marks):
        return "the database holds time marks the archive does not", needs_base
    if existing.merkle_root:
        return "the session is sealed in the database without chunks the archive holds", needs_base
    if existing.stream_offset > session.record["stream_offset"]:
        return "the database holds more stream bytes than the archive", needs_base
    session.action = EXTEND
    session.rows_to_write(missing)
    session.write_tail = session.stream_tail is not None
    return None, needs_base


def _owners_missing(sessions: list[ArchivedSession]) -> list[str]:
    user_model = get_user_model()
    wanted = {session.owner for session in sessions if session.action == CREATE}
    wanted |= {session.owner for session in sessions if session.action == EXTEND}
    present = set(
        user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__in": wanted}).values_list(
            user_model.USERNAME_FIELD, flat=True
        )
    )
    return sorted(wanted - present)


def _keys_missing(archive: Path, key_ids: list[str]) -> RestoreNeedsKey:
    named = ", ".join(f"'{key_id}'" for key_id in key_ids)
    keys = f"key {named}, which is" if len(key_ids) == 1 else f"keys {named}, which are"
    return RestoreNeedsKey(
        f"{archive} holds bytes sealed under {keys} not configured. Nothing was written: add "
        f"{'it' if len(key_ids) == 1 else 'them'} to LUCID_ENCRYPTION_KEYS_FILE (or "
        "LUCID_ENCRYPTION_KEYS), then run this again.",
        extra={"key_ids": key_ids},
    )


def archive_verify(*, archive: Path, progress: ProgressFactory | None = None) -> VerifiedArchive:
    """Check every hash of the whole archive against its manifest; writes nothing."""
    archive = Path(archive)
    archive_require(archive)
    with archive_reading(archive, advice=RESTORE_ADVICE):
        scan = _archive_scan(archive, progress=progress)
        manifest = scan.manifest
        try:
            if manifest.get("format") != FORMAT:
                raise ArchiveDamaged("the manifest is not that of a Lucid backup")
            if manifest.get("version") != VERSION:
                raise BackupError(
                    f"{archive} has format version {manifest.get('version')}; this Lucid "
                    f"restores version {VERSION}. Restore it with the Lucid release that wrote it."
                )
            archive_id, base_id = str(manifest["id"]), manifest["base"]
            sessions = sessions_from_manifest(manifest)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ArchiveDamaged(f"the manifest is not valid ({error})") from error
        if scan.keys_missing:
            raise _keys_missing(archive, sorted(scan.keys_missing))
        problems = [
            problem for session in sessions for problem in _session_problems(session, scan, base_id)
        ]
        problems += [
            f"member {name!r} is not in the manifest" for name in _unlisted_members(sessions, scan)
        ]
        if problems:
            raise ArchiveDamaged(f"{len(problems)} problems: {listing(problems)}")
    for session in sessions:
        session.record = scan.records[session.member]
        if session.time_marks is not None:
            session.marks = scan.marks.get(session.time_marks.member)
    return VerifiedArchive(
        path=archive,
        archive_id=archive_id,
        base_id=base_id,
        created_at=str(manifest.get("created_at", "")),
        sessions=sessions,
        member_sha256={name: digest.archived_sha256 for name, digest in scan.digests.items()},
    )


def backup_verify(*, archive: Path, progress: ProgressFactory | None = None) -> VerifiedArchive:
    """Check the whole archive and what restoring it would do; writes nothing."""
    verified = archive_verify(archive=archive, progress=progress)
    archive, base_id, sessions = verified.path, verified.base_id, verified.sessions
    conflicts, needing_base = [], []
    for session in sessions:
        conflict, needs_base = _plan(session)
        if conflict:
            conflicts.append(f"session {session.id}: {conflict}")
        if needs_base:
            needing_base.append(str(session.id))
    if conflicts:
        raise RestoreConflict(
            f"{len(conflicts)} sessions of {archive} exist with other data ({listing(conflicts)})."
            " Nothing was restored; delete those sessions first if the archive should replace "
            "them, or restore another archive."
        )
    if needing_base:
        raise RestoreNeedsBase(
            f"{archive} is an incremental backup over archive {base_id}, whose chunks of "
            f"sessions {listing(needing_base)} are not in the database. Nothing was restored; "
            f"restore the base archive {base_id} first, then this one."
        )
    verified.owners_missing = _owners_missing(sessions)
    return verified
