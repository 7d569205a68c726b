"""Writes of recording sessions: creation, changes, deletion and the recording state machine.

Stopping a recording also seals its chunks, so `chunks_app.services.session_stop` drives the
`stop` transition given here.
"""

import json
import re
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.utils import timezone

from core.audit import audit_record
from core.choices import AuditAction, CompressionAlgorithm
from core.db import atomic_retried, lock_rows, on_commit
from core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from core.sizes import MIB
from sessions_app import tallies
from sessions_app.choices import SessionStatus
from sessions_app.fields import (
    SESSION_FIELDS_FIXED_AFTER_CREATED,
    SESSION_RECORDING_FORMAT_FIELDS,
    SESSION_WRITABLE_FIELDS,
)
from sessions_app.models import DEFAULT_CONTENT_TYPE, Session
from sessions_app.selectors import session_access_cache_key
from sessions_app.tallies import tally_apply

_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
# RFC 9110 §8.3.1: type/subtype and parameters, each value a token or a quoted string.
MEDIA_TYPE = re.compile(rf'{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|"[^"\\\r\n]*"))*')
# Rounds of a deletion that find a new chunk busy, before the last one waits for it.
DELETE_ROUNDS = 5
# action -> (statuses it may start from, status it leads to, timestamp it sets)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str | None]] = {
    "start": (frozenset({SessionStatus.CREATED}), SessionStatus.RECORDING, "started_at"),
    "pause": (frozenset({SessionStatus.RECORDING}), SessionStatus.PAUSED, None),
    "resume": (frozenset({SessionStatus.PAUSED}), SessionStatus.RECORDING, None),
    "stop": (
        frozenset({SessionStatus.RECORDING, SessionStatus.PAUSED}),
        SessionStatus.STOPPED,
        "stopped_at",
    ),
}


def _validate_recording_format(*, chunk_size: int, algorithm: str, level: int) -> None:
    errors: dict[str, list[str]] = {}
    smallest = settings.LUCID_MIN_CHUNK_SIZE
    largest = settings.LUCID_MAX_CHUNK_SIZE_MB * MIB
    if not smallest <= chunk_size <= largest:
        errors["chunk_size"] = [f"Must be between {smallest} and {largest} bytes."]
    if algorithm not in CompressionAlgorithm.values:
        choices = ", ".join(CompressionAlgorithm.values)
        errors["compression_algorithm"] = [f"Must be one of: {choices}."]
    elif problem := CompressionAlgorithm(algorithm).level_problem(level):
        errors["compression_level"] = [problem]
    if errors:
        raise ValidationFailed("The recording format is not valid.", fields=errors)


def _has_nul(value: Any) -> bool:
    """Whether a NUL character is in any string of `value`, keys included, at any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def _validate_metadata(metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise ValidationFailed(
            "metadata must be a JSON object.", fields={"metadata": ["Must be a JSON object."]}
        )
    if _has_nul(metadata):
        raise ValidationFailed(
            "metadata must not contain NUL characters.",
            fields={"metadata": ["NUL (\\u0000) characters are not allowed."]},
        )
    if len(json.dumps(metadata).encode()) > settings.LUCID_METADATA_MAX_BYTES:
        limit = settings.LUCID_METADATA_MAX_BYTES
        raise ValidationFailed(
            f"metadata is larger than {limit} bytes.",
            fields={"metadata": [f"Must be at most {limit} bytes as JSON."]},
        )


def _validate_content_type(content_type: str) -> None:
    if not MEDIA_TYPE.fullmatch(content_type):
        raise ValidationFailed(
            "content_type must be a media type such as video/mp4.",
            fields={"content_type": ["Not a media type (type/subtype[; name=value]…)."]},
        )


def session_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    host: str = "",
    remote_user: str = "",
    client_address: str | None = None,
    metadata: dict[str, Any] | None = None,
    content_type: str = DEFAULT_CONTENT_TYPE,
    chunk_size: int | None = None,
    compression_algorithm: str | None = None,
    compression_level: int | None = None,
    retention_days: int | None = None,
    legal_hold: bool = False,
) -> Session:
    """A new session in `created`, with the system defaults for what is not given."""
    metadata = {} if metadata is None else metadata
    algorithm = compression_algorithm or settings.LUCID_COMPRESSION_ALGORITHM
    if compression_level is None:
        if algorithm == settings.LUCID_COMPRESSION_ALGORITHM:
            compression_level = settings.LUCID_COMPRESSION_LEVEL
        elif algorithm in CompressionAlgorithm.values:
            compression_level = CompressionAlgorithm(algorithm).default_level
    if chunk_size is None:
        chunk_size = settings.LUCID_CHUNK_SIZE_MB * MIB
    _validate_metadata(metadata)
    _validate_content_type(content_type)
    _validate_recording_format(chunk_size=chunk_size, algorithm=algorithm, level=compression_level)

    def create() -> Session:
        session = Session.objects.create(
            owner=owner,
            name=name,
            host=host,
            remote_user=remote_user,
            client_address=client_address,
            metadata=metadata,
            content_type=content_type,
            chunk_size=chunk_size,
            compression_algorithm=algorithm,
            compression_level=compression_level,
            retention_days=retention_days,
            legal_hold=legal_hold,
        )
        tally_apply(session_id=None, tally=tallies.session_created(status=session.status))
        audit_record(
            action=AuditAction.SESSION_CREATED, session_id=session.pk, detail={"name": name}
        )
        return session

    return atomic_retried(create)


def session_update(*, session: Session, data: dict[str, Any]) -> Session:
    """Apply the writable fields in `data`; the recording format is fixed once started."""
    changes = {
        field: value
        for field, value in data.items()
        if field in SESSION_WRITABLE_FIELDS and getattr(session, field) != value
    }
    locked = [field for field in SESSION_FIELDS_FIXED_AFTER_CREATED if field in changes]
    if locked and session.status != SessionStatus.CREATED:
        raise Conflict(
            f"{', '.join(locked)} can only change while the session is 'created'; "
            f"it is '{session.status}'.",
            code="field_locked",
            extra={"status": session.status, "fields": {f: ["Locked."] for f in locked}},
        )
    if "metadata" in changes:
        _validate_metadata(changes["metadata"])
    if "content_type" in changes:
        _validate_content_type(changes["content_type"])
    if set(locked) & set(SESSION_RECORDING_FORMAT_FIELDS):
        if "compression_algorithm" in changes and "compression_level" not in changes:
            algorithm = CompressionAlgorithm(changes["compression_algorithm"])
            changes["compression_level"] = algorithm.default_level
        _validate_recording_format(
            chunk_size=changes.get("chunk_size", session.chunk_size),
            algorithm=changes.get("compression_algorithm", session.compression_algorithm),
            level=changes.get("compression_level", session.compression_level),
        )
    if not changes:
        return session
    for field, value in changes.items():
        setattr(session, field, value)

    def save() -> None:
        session.save(update_fields=[*changes, "updated_at"])
        audit_record(
            action=AuditAction.SESSION_UPDATED,
            session_id=session.pk,
            detail={"changed": {field: str(value)[:200] for field, value in changes.items()}},
        )

    atomic_retried(save)
    return session


def session_delete(*, session: Session) -> None:
    """Remove the session with all its chunks; a session under legal hold stays.

    Its files go once the deletion commits (`chunks_app.receivers`).
    """
    for round_ in range(1, DELETE_ROUNDS + 1):
        if atomic_retried(partial(_session_remove, session=session, last=round_ == DELETE_ROUNDS)):
            return


def _session_remove(*, session: Session, last: bool) -> bool:
    """Lock the chunk rows, then the session row (the pipeline's order), and remove them.

    A chunk added while we waited for the session row may be held by a pipeline transaction
    that waits for the session row in turn: then give both rows up (False), unless `last`.
    """
    chunks = session.chunks.order_by("sequence")
    list(chunks.select_for_update(of=("self",)).values_list("pk"))
    row = lock_rows(Session.objects.filter(pk=session.pk), updated_at=timezone.now()).first()
    if row is None:
        raise NotFound(f"No session with id '{session.pk}'.")
    free = chunks.select_for_update(skip_locked=True, of=("self",)).values_list("pk")
    if not last and len(free) != chunks.count():
        return False
    session = row
    if session.legal_hold:
        raise Conflict(
            "The session is under legal hold; clear legal_hold before deleting it.",
            code="legal_hold",
        )
    tally_apply(session_id=None, tally=tallies.session_removed(session=session))
    access_cache_key = session_access_cache_key(session.pk)
    on_commit(lambda: cache.delete(access_cache_key))
    audit_record(
        action=AuditAction.SESSION_DELETED,
        session_id=session.pk,
        detail={"name": session.name, "chunk_count": session.chunk_count, "size": session.size},
    )
    session.delete()
    return True


def session_transition(*, session: Session, action: str) -> Session:
    """Move the session by `action` (a key of TRANSITIONS); 409 from any other status."""
    sources, target, timestamp_field = TRANSITIONS[action]
    now = timezone.now()
    changes: dict[str, Any] = {"status": target, "updated_at": now}
    if timestamp_field:
        changes[timestamp_field] = now

    def transition() -> None:
        row = lock_rows(Session.objects.filter(pk=session.pk), updated_at=now).first()
        if row is None or row.status not in sources:
            status = row.status if row else session.status
            raise InvalidTransition(action=action, status=status)
        Session.objects.filter(pk=session.pk).update(**changes)
        tally = tallies.session_moved(source=row.status, target=target)
        tally_apply(session_id=None, tally=tally)
        audit_record(
            action=AuditAction.SESSION_STATE_CHANGED,
            session_id=session.pk,
            detail={"action": action, "from": row.status, "to": target},
        )

    atomic_retried(transition)
    for field, value in changes.items():
        setattr(session, field, value)
    return session


def session_start(*, session: Session) -> Session:
    return session_transition(session=session, action="start")


def session_pause(*, session: Session) -> Session:
    return session_transition(session=session, action="pause")


def session_resume(*, session: Session) -> Session:
    return session_transition(session=session, action="resume")
