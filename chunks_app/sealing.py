"""A chunk's kept bytes sealed under a key: bound to its session and sequence, named by key.

Spool files and stored objects of a chunk are sealed (`core.encryption`) when they are written
under a key, and `key_id` on the chunk names the key of the object it is kept in now (None:
plaintext). A rewrite under another key goes to another name, so the row can move to it in one
step and a reader of the old name finds it gone and reads the row again.
"""

import uuid
from collections.abc import Iterable
from typing import BinaryIO

from core.encryption import key_ring, seal, unsealed_into

SEALED_SUFFIX = "sealed"
RAW_SUFFIX = "raw"


def active_key_id() -> str | None:
    """The key new bytes are sealed under; None when encryption is off."""
    return key_ring().active_id


def chunk_context(*, session_id: uuid.UUID, sequence: int) -> bytes:
    """What a chunk's sealed bytes are bound to: its session and its sequence."""
    return session_id.bytes + sequence.to_bytes(8, "big")


def chunk_seal(
    pieces: Iterable[bytes], *, session_id: uuid.UUID, sequence: int, key_id: str | None
) -> Iterable[bytes]:
    """`pieces` as written for the chunk: sealed under `key_id`, or as they are without one."""
    if key_id is None:
        return pieces
    return seal(
        pieces, key_id=key_id, context=chunk_context(session_id=session_id, sequence=sequence)
    )


def chunk_unsealed(
    file: BinaryIO, *, session_id: uuid.UUID, sequence: int, key_id: str | None, limit: int
) -> bytes | bytearray:
    """The plaintext of a chunk's kept file, at most `limit` bytes of it (more is damage anyway).

    Raises `AuthenticationFailed` for sealed bytes that are not the chunk's under `key_id`.
    """
    if key_id is None:
        return file.read(limit)
    context = chunk_context(session_id=session_id, sequence=sequence)
    return unsealed_into(file, context=context, key_id=key_id, limit=limit)


def stored_key(*, session_id: uuid.UUID, sequence: int, algorithm: str, key_id: str | None) -> str:
    """Where the chunk store keeps a chunk in `algorithm`, sealed under `key_id` or not."""
    sealed = f".{key_id}" if key_id else ""
    return f"{session_id}/{sequence:012d}{sealed}.{algorithm}"


def upload_spool_key(
    *, session_id: uuid.UUID, chunk_id: uuid.UUID, key_id: str | None = None
) -> str:
    """Where the spool keeps an uploaded (or rewritten) chunk, sealed under `key_id` or not."""
    if key_id:
        return f"{session_id}/{chunk_id}.{key_id}.{SEALED_SUFFIX}"
    return f"{session_id}/{chunk_id}.{RAW_SUFFIX}"
