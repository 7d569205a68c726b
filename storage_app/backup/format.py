"""The archive format: names of its parts, what its manifest lists, rows as records, errors."""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from chunks_app.models import Chunk, TimeMark
from chunks_app.sealing import RAW_SUFFIX, SEALED_SUFFIX, stored_key
from core.choices import CompressionAlgorithm
from core.encryption import KEY_ID_PATTERN
from core.errors import ApplicationError
from sessions_app.choices import IngestMode, SessionStatus
from sessions_app.fields import SESSION_RECORD_DATETIME_FIELDS, SESSION_RECORD_FIELDS
from sessions_app.models import DEFAULT_CONTENT_TYPE, Session
from sessions_app.services import MEDIA_TYPE

FORMAT = "lucid-backup"
VERSION = 1
MANIFEST = "manifest.json"
ARCHIVE_PREFIX = "lucid-backup-"
ARCHIVE_SUFFIX = ".tar.zst"
RECORD_MAX_BYTES = 1024 * 1024
MARKS_MAX_BYTES = 64 * 1024 * 1024
PROBLEMS_SHOWN = 5

CREATE, EXTEND, UNCHANGED = "create", "extend", "unchanged"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ALGORITHMS = "|".join(CompressionAlgorithm.values)
_KEY = KEY_ID_PATTERN.pattern
SESSION_MEMBER = re.compile(rf"sessions/(?P<session>{_UUID})\.json")
CHUNK_MEMBER = re.compile(
    rf"chunks/(?P<session>{_UUID})/(?P<sequence>[0-9]{{12}})(?:\.(?P<key>{_KEY}))?"
    rf"\.(?P<algorithm>{_ALGORITHMS})"
)
TAIL_MEMBER = re.compile(
    rf"streams/(?P<session>{_UUID})/tail\.(?:{RAW_SUFFIX}|(?P<key>{_KEY})\.{SEALED_SUFFIX})"
)
MARKS_MEMBER = re.compile(rf"marks/(?P<session>{_UUID})\.json")
ARCHIVE_NAME = re.compile(r"lucid-backup-.+\.tar\.zst")


class BackupError(ApplicationError):
    """A backup or restore that could not be done; the message says what to do next."""

    default_code = "backup_failed"


class BackupCorrupt(BackupError):
    """The archive is not what its manifest says: damaged, truncated or not a Lucid backup."""

    default_code = "backup_corrupt"


class ArchiveDamaged(Exception):
    """What is wrong inside an archive; `archive_reading` says which archive and what to do."""


class RestoreNeedsBase(BackupError):
    """An incremental archive whose base's chunks are not in the database yet."""

    status_code = 409
    default_code = "restore_needs_base"


class RestoreNeedsKey(BackupError):
    """An archive whose members are sealed under keys that are not configured."""

    status_code = 503
    default_code = "encryption_key_missing"


class RestoreConflict(BackupError):
    """Sessions of the archive exist in the database with other data."""

    status_code = 409
    default_code = "restore_conflict"


def listing(items: list[str]) -> str:
    """The first few items, and how many more there are."""
    shown = "; ".join(items[:PROBLEMS_SHOWN])
    more = len(items) - PROBLEMS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def session_member_name(*, session_id: uuid.UUID) -> str:
    return f"sessions/{session_id}.json"


def marks_member_name(*, session_id: uuid.UUID) -> str:
    return f"marks/{session_id}.json"


def chunk_member_name(
    *, session_id: uuid.UUID, sequence: int, algorithm: str, key_id: str | None
) -> str:
    """The member of a chunk's file: named as the chunk store names it, under `chunks/`."""
    key = stored_key(session_id=session_id, sequence=sequence, algorithm=algorithm, key_id=key_id)
    return f"chunks/{key}"


def tail_member_name(*, session_id: uuid.UUID, key_id: str | None) -> str:
    suffix = f"{key_id}.{SEALED_SUFFIX}" if key_id else RAW_SUFFIX
    return f"streams/{session_id}/tail.{suffix}"


@dataclass(frozen=True)
class ListedChunk:
    """What the manifest says of each chunk it lists: its place, id, raw size and sha256."""

    session_id: uuid.UUID
    sequence: int
    id: uuid.UUID
    size: int
    sha256: str
    created_at: datetime | None


@dataclass(frozen=True)
class ArchivedChunk(ListedChunk):
    algorithm: str
    stored_size: int
    stored_sha256: str
    key_id: str | None
    member: str | None
    in_base: str | None
    stored_at: datetime | None
    processing_ms: float | None

    @property
    def storage_key(self) -> str:
        return stored_key(
            session_id=self.session_id,
            sequence=self.sequence,
            algorithm=self.algorithm,
            key_id=self.key_id,
        )


@dataclass(frozen=True)
class DamagedChunk(ListedChunk):
    """A chunk the backup found damaged: listed in the manifest's `damaged`, its bytes left out."""

    reason: str


@dataclass(frozen=True)
class StreamTail:
    """The member of a stream's acknowledged bytes past its last chunk: their size and sha256
    (before sealing), and the key it is sealed under."""

    member: str
    size: int
    sha256: str
    key_id: str | None


@dataclass(frozen=True)
class ArchivedMarks:
    """The member of a session's time marks: its sha256 and how many marks it holds."""

    member: str
    sha256: str
    count: int


Mark = tuple[int, int, int]
"""A time mark as archived: (sequence, position, time_ms)."""


@dataclass
class ArchivedSession:
    id: uuid.UUID
    member: str
    sha256: str
    stream_tail: StreamTail | None
    time_marks: ArchivedMarks | None = None
    record: dict[str, Any] = field(default_factory=dict)
    marks: list[Mark] | None = None
    """The archive's time marks of the session, kept while verifying if it is in the database."""
    chunks: list[ArchivedChunk] = field(default_factory=list)
    damaged: list[DamagedChunk] = field(default_factory=list)
    action: str = CREATE
    chunks_to_write: set[int] = field(default_factory=set)
    damaged_to_write: set[int] = field(default_factory=set)
    write_tail: bool = False

    @property
    def owner(self) -> str:
        return self.record["owner"]

    def sha256_by_sequence(self) -> dict[int, str]:
        """The raw sha256 of every chunk the archive lists, archived or damaged, by sequence."""
        listed = {chunk.sequence: chunk.sha256 for chunk in self.chunks}
        listed.update({chunk.sequence: chunk.sha256 for chunk in self.damaged})
        return dict(sorted(listed.items()))

    def rows_to_write(self, sequences: set[int]) -> None:
        """Restore the rows of these sequences: archived chunks as stored, the others damaged."""
        self.chunks_to_write = {chunk.sequence for chunk in self.chunks} & sequences
        self.damaged_to_write = {chunk.sequence for chunk in self.damaged} & sequences


def _datetime_text(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _datetime_value(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = parse_datetime(text)
    if value is None:
        raise ValueError(f"not a date and time: {text!r}")
    return value


def session_record(session: Session) -> dict[str, Any]:
    record: dict[str, Any] = {"id": str(session.pk), "owner": session.owner.get_username()}
    for name in SESSION_RECORD_FIELDS:
        value = getattr(session, name)
        record[name] = _datetime_text(value) if name in SESSION_RECORD_DATETIME_FIELDS else value
    return record


SESSION_RECORD_ADDED = {
    "content_type": DEFAULT_CONTENT_TYPE,
    "duration_ms": None,
    "remote_user": "",
    "client_address": None,
}
"""Fields records written before they existed lack, and what such a session has."""


def session_fields(record: dict[str, Any]) -> dict[str, Any]:
    fields = {
        name: record.get(name, SESSION_RECORD_ADDED[name])
        if name in SESSION_RECORD_ADDED
        else record[name]
        for name in SESSION_RECORD_FIELDS
    }
    for name in SESSION_RECORD_DATETIME_FIELDS:
        fields[name] = _datetime_value(fields[name])
    return fields


def record_check(record: dict[str, Any], *, session_id: uuid.UUID) -> None:
    """Raise ValueError unless the record describes that session completely."""
    if record.get("id") != str(session_id):
        raise ValueError(f"it names session {record.get('id')}")
    fields = session_fields(record)
    if not isinstance(record.get("owner"), str) or not record["owner"]:
        raise ValueError("it names no owner")
    for name in ("chunk_size", "stream_offset", "processing_us"):
        if not isinstance(record[name], int) or isinstance(record[name], bool):
            raise ValueError(f"{name} is not an integer")
    if not isinstance(record["merkle_root"], str):
        raise ValueError("merkle_root is not text")
    content_type = fields["content_type"]
    if not isinstance(content_type, str) or not MEDIA_TYPE.fullmatch(content_type):
        raise ValueError(f"content_type {content_type!r} is not a media type")
    if fields["duration_ms"] is not None and not _natural(fields["duration_ms"]):
        raise ValueError("duration_ms is neither null nor a non-negative integer")
    for name, choices in (
        ("status", SessionStatus.values),
        ("compression_algorithm", CompressionAlgorithm.values),
        ("ingest_mode", IngestMode.values),
    ):
        if record[name] not in choices:
            raise ValueError(f"{name} {record[name]!r} is not one of {', '.join(choices)}")


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def marks_record(marks: list[TimeMark]) -> bytes:
    """The member of a session's time marks: `[[sequence, position, time_ms], …]` in place
    order."""
    places = sorted((mark.sequence, mark.position, mark.time_ms) for mark in marks)
    return json.dumps([list(place) for place in places], separators=(",", ":")).encode()


def marks_from_record(data: bytes) -> list[Mark]:
    """The marks of a marks member; ValueError unless they rise in time as they rise in place."""
    items = json.loads(data)
    if not isinstance(items, list):
        raise ValueError("it is not a list")
    marks: list[Mark] = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 3 and all(map(_natural, item))):
            raise ValueError(f"{item!r} is not [sequence, position, time_ms]")
        mark = (item[0], item[1], item[2])
        if marks and (mark[:2] <= marks[-1][:2] or mark[2] <= marks[-1][2]):
            raise ValueError(
                f"the mark {item!r} does not follow {list(marks[-1])!r} in place and time"
            )
        marks.append(mark)
    return marks


def _listed_entry(chunk: Chunk) -> dict:
    return {
        "session": str(chunk.session_id),
        "sequence": chunk.sequence,
        "id": str(chunk.pk),
        "size": chunk.size,
        "sha256": chunk.sha256,
        "created_at": _datetime_text(chunk.created_at),
    }


def _listed_fields(entry: dict) -> dict[str, Any]:
    return {
        "session_id": uuid.UUID(entry["session"]),
        "sequence": int(entry["sequence"]),
        "id": uuid.UUID(entry["id"]),
        "size": int(entry["size"]),
        "sha256": str(entry["sha256"]),
        "created_at": _datetime_value(entry.get("created_at")),
    }


def chunk_entry(
    chunk: Chunk, *, algorithm: str, stored_size: int, stored_sha256: str, key_id: str | None
) -> dict:
    return {
        **_listed_entry(chunk),
        "algorithm": algorithm,
        "stored_size": stored_size,
        "stored_sha256": stored_sha256,
        "key_id": key_id,
        "stored_at": _datetime_text(chunk.stored_at),
        "processing_ms": chunk.processing_ms,
    }


def damaged_entry(chunk: Chunk, *, reason: str) -> dict:
    return {**_listed_entry(chunk), "reason": reason}


def damaged_from_entry(entry: dict) -> DamagedChunk:
    return DamagedChunk(**_listed_fields(entry), reason=str(entry["reason"]))


def _key_id(entry: dict) -> str | None:
    """The entry's `key_id`: None when plain, or in an archive written before keys existed."""
    key_id = entry.get("key_id")
    if key_id is not None and not (isinstance(key_id, str) and KEY_ID_PATTERN.fullmatch(key_id)):
        raise ValueError(f"key_id {key_id!r} is not a key id")
    return key_id


def _chunk_from_entry(entry: dict) -> ArchivedChunk:
    member, in_base = entry.get("member"), entry.get("in_base")
    if (member is None) == (in_base is None):
        raise ValueError("a chunk entry needs either member or in_base")
    return ArchivedChunk(
        **_listed_fields(entry),
        algorithm=str(entry["algorithm"]),
        stored_size=int(entry["stored_size"]),
        stored_sha256=str(entry["stored_sha256"]),
        key_id=_key_id(entry),
        member=member,
        in_base=in_base,
        stored_at=_datetime_value(entry.get("stored_at")),
        processing_ms=entry.get("processing_ms"),
    )


def _listed_session(
    sessions: dict[uuid.UUID, ArchivedSession], session_id: uuid.UUID
) -> ArchivedSession:
    if session_id not in sessions:
        raise ValueError(f"a chunk of session {session_id}, which is not listed")
    return sessions[session_id]


def sessions_from_manifest(manifest: dict) -> list[ArchivedSession]:
    """The sessions a manifest lists, with their chunks; `damaged`, `key_id` and `time_marks`
    may be absent (older ones)."""
    sessions: dict[uuid.UUID, ArchivedSession] = {}
    for entry in manifest["sessions"]:
        tail, marks = entry.get("stream_tail"), entry.get("time_marks")
        session = ArchivedSession(
            id=uuid.UUID(entry["id"]),
            member=str(entry["member"]),
            sha256=str(entry["sha256"]),
            stream_tail=StreamTail(tail["member"], int(tail["size"]), tail["sha256"], _key_id(tail))
            if tail
            else None,
            time_marks=ArchivedMarks(
                str(marks["member"]), str(marks["sha256"]), int(marks["count"])
            )
            if marks
            else None,
        )
        if session.id in sessions:
            raise ValueError(f"session {session.id} is listed twice")
        sessions[session.id] = session
    for chunk in map(_chunk_from_entry, manifest["chunks"]):
        _listed_session(sessions, chunk.session_id).chunks.append(chunk)
    for damaged in map(damaged_from_entry, manifest.get("damaged", [])):
        _listed_session(sessions, damaged.session_id).damaged.append(damaged)
    for session in sessions.values():
        session.chunks.sort(key=lambda chunk: chunk.sequence)
        session.damaged.sort(key=lambda chunk: chunk.sequence)
        if len(session.sha256_by_sequence()) != len(session.chunks) + len(session.damaged):
            raise ValueError(f"session {session.id} lists a chunk twice")
    return list(sessions.values())
