"""Encryption at rest: the configured keys and the sealed format every kept byte is written in.

A sealed object is a header (`MAGIC`, the key id's length and the key id) followed by records,
each `<plaintext length: 4 bytes><nonce: 12 bytes><ciphertext><tag: 16 bytes>`, encrypted with
AES-256-GCM under a fresh random nonce. Every record's associated data binds the key id, the
object's context (which chunk it is) and the record's plaintext offset, so a record moved within
an object, an object moved to another chunk, or one read with another key fails authentication.
Records can be appended to an object one by one, which is how the stream spool grows.

Keys come from settings (see `load_key_ring`); no key material is ever printed or logged.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import logging
import os
import re
import secrets
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from core.errors import ApplicationError

MAGIC = b"LUCIDAE1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
RECORD_MAX = 1024 * 1024
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LENGTH = struct.Struct(">I")
_OFFSET = struct.Struct(">Q")
_RECORD_HEAD = _LENGTH.size + NONCE_BYTES
KEY_SETTINGS = frozenset(
    {"LUCID_ENCRYPTION_KEYS_FILE", "LUCID_ENCRYPTION_KEYS", "LUCID_ENCRYPTION_ACTIVE_KEY"}
)
logger = logging.getLogger(__name__)


class KeyConfigurationError(ImproperlyConfigured):
    """The encryption keys in the settings cannot be used; the message says what to fix."""


class AuthenticationFailed(ValueError):
    """Sealed bytes are not what was sealed for this object under this key."""


class KeyNotConfigured(ApplicationError):
    """Bytes are sealed under a key this process does not have: a 503 until it is added."""

    status_code = 503
    default_code = "encryption_key_missing"

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"Data is encrypted under key '{key_id}', which is not configured. Add that key to "
            "LUCID_ENCRYPTION_KEYS_FILE (or LUCID_ENCRYPTION_KEYS) on every role; after "
            "`manage.py rotate_keys` no data needs it any more.",
            extra={"key_id": key_id},
        )
        self.key_id = key_id


@dataclass(frozen=True)
class KeyRing:
    """The configured keys by id, and the id of the one new data is sealed under (or None)."""

    active_id: str | None
    warnings: tuple[str, ...] = ()
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, repr=False)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._ciphers)

    def cipher(self, key_id: str) -> AESGCM:
        try:
            return self._ciphers[key_id]
        except KeyError:
            raise KeyNotConfigured(key_id) from None

    def has(self, key_id: str) -> bool:
        return key_id in self._ciphers


def generate_key_line(key_id: str) -> str:
    """A new key as a keys-file line: `<id>:<base64 of 32 random bytes>`."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise ValueError(
            f"Key id {key_id!r} is not valid: use 1 to 64 letters, digits, '-' or '_'."
        )
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def _parse_entry(entry: str, *, where: str) -> tuple[str, bytes]:
    key_id, separator, encoded = entry.partition(":")
    key_id, encoded = key_id.strip(), encoded.strip()
    if not separator or not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyConfigurationError(
            f"{where} is not '<id>:<base64 of 32 bytes>' with an id of 1 to 64 letters, digits, "
            "'-' or '_'. Make a valid line with `manage.py generate_key ID`."
        )
    try:
        material = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        material = b""
    if len(material) != KEY_BYTES:
        raise KeyConfigurationError(
            f"Key '{key_id}' ({where}) is not the base64 of exactly {KEY_BYTES} bytes. Make a "
            "valid line with `manage.py generate_key ID`."
        )
    return key_id, material


def _file_entries(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    try:
        status = path.stat()
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise KeyConfigurationError(
            f"LUCID_ENCRYPTION_KEYS_FILE {path} cannot be read ({error.__class__.__name__}: "
            f"{getattr(error, 'strerror', None) or 'not ASCII text'}). Check the path and that "
            "this process's user may read it."
        ) from None
    warnings = []
    if stat.S_IMODE(status.st_mode) & 0o077:
        warnings.append(
            f"LUCID_ENCRYPTION_KEYS_FILE {path} can be read by other users (mode "
            f"{stat.S_IMODE(status.st_mode):o}); make it 0600: chmod 600 {path}."
        )
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append((line, f"line {number} of {path}"))
    return entries, warnings


def load_key_ring(*, keys_file: str = "", keys: str = "", active_key: str = "") -> KeyRing:
    """Parse and check a key configuration; `KeyConfigurationError` says what is wrong."""
    entries, warnings = _file_entries(Path(keys_file)) if keys_file else ([], [])
    for number, entry in enumerate(re.split(r"[,\n]", keys), start=1):
        entry = entry.split("#", 1)[0].strip()
        if entry:
            entries.append((entry, f"entry {number} of LUCID_ENCRYPTION_KEYS"))
    ciphers: dict[str, AESGCM] = {}
    for entry, where in entries:
        key_id, material = _parse_entry(entry, where=where)
        if key_id in ciphers:
            raise KeyConfigurationError(
                f"Key '{key_id}' is configured twice ({where}); keep one entry per id."
            )
        ciphers[key_id] = AESGCM(material)
    active = active_key.strip() or None
    if active is None and ciphers:
        raise KeyConfigurationError(
            "Encryption keys are configured but LUCID_ENCRYPTION_ACTIVE_KEY is not set: set it "
            f"to the key new data is encrypted under, one of: {', '.join(sorted(ciphers))}."
        )
    if active is not None and active not in ciphers:
        configured = ", ".join(sorted(ciphers)) or "none"
        raise KeyConfigurationError(
            f"LUCID_ENCRYPTION_ACTIVE_KEY names key '{active}', which is not configured (keys "
            f"configured: {configured}). Add it to LUCID_ENCRYPTION_KEYS_FILE or "
            "LUCID_ENCRYPTION_KEYS; `manage.py generate_key ID` makes one."
        )
    return KeyRing(active_id=active, warnings=tuple(warnings), _ciphers=ciphers)


@functools.cache
def key_ring() -> KeyRing:
    """The keys configured in settings, parsed once per process."""
    ring = load_key_ring(
        keys_file=getattr(settings, "LUCID_ENCRYPTION_KEYS_FILE", ""),
        keys=getattr(settings, "LUCID_ENCRYPTION_KEYS", ""),
        active_key=getattr(settings, "LUCID_ENCRYPTION_ACTIVE_KEY", ""),
    )
    for warning in ring.warnings:
        logger.warning("encryption: %s", warning)
    return ring


@receiver(setting_changed)
def _drop_cached_key_ring(*, setting: str, **kwargs: Any) -> None:
    if setting in KEY_SETTINGS:
        key_ring.cache_clear()


def header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return MAGIC + bytes([len(encoded)]) + encoded


def _associated_data(key_id: str, context: bytes, offset: int) -> bytes:
    return b"".join((MAGIC, key_id.encode("ascii"), b"\0", context, _OFFSET.pack(offset)))


def seal_records(
    pieces: Iterable[bytes], *, key_id: str, context: bytes, offset: int = 0
) -> Iterator[bytes]:
    """The records of `pieces` sealed under `key_id`, the first at plaintext `offset`."""
    cipher = key_ring().cipher(key_id)
    for piece in pieces:
        view = memoryview(piece).cast("B")
        for start in range(0, len(view), RECORD_MAX):
            part = view[start : start + RECORD_MAX]
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, part, _associated_data(key_id, context, offset))
            yield _LENGTH.pack(len(part)) + nonce
            yield sealed
            offset += len(part)


def seal(pieces: Iterable[bytes], *, key_id: str, context: bytes) -> Iterator[bytes]:
    """A whole sealed object: the header, then the records of `pieces`."""
    yield header(key_id)
    yield from seal_records(pieces, key_id=key_id, context=context)


def read_header(file: BinaryIO) -> str:
    """The key id of the sealed object `file` is at the start of; leaves it after the header."""
    head = file.read(len(MAGIC) + 1)
    if len(head) != len(MAGIC) + 1 or not head.startswith(MAGIC):
        raise AuthenticationFailed("not a sealed object")
    key_id = file.read(head[-1])
    try:
        text = key_id.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if not KEY_ID_PATTERN.fullmatch(text):
        raise AuthenticationFailed("not a sealed object")
    return text


def _record_head(file: BinaryIO) -> tuple[int, bytes] | None:
    head = file.read(_RECORD_HEAD)
    if not head:
        return None
    if len(head) != _RECORD_HEAD:
        raise AuthenticationFailed("a record is cut short")
    (length,) = _LENGTH.unpack_from(head)
    if not 0 < length <= RECORD_MAX:
        raise AuthenticationFailed("a record's length is not valid")
    return length, head[_LENGTH.size :]


def unsealed_pieces(file: BinaryIO, *, context: bytes, key_id: str) -> Iterator[bytes]:
    """The plaintext of the sealed object `file`, record by record, each authenticated first.

    `key_id` is the key the object is expected under; a header naming another fails.
    """
    if read_header(file) != key_id:
        raise AuthenticationFailed("sealed under another key")
    cipher = key_ring().cipher(key_id)
    offset = 0
    while (record := _record_head(file)) is not None:
        length, nonce = record
        sealed = file.read(length + TAG_BYTES)
        if len(sealed) != length + TAG_BYTES:
            raise AuthenticationFailed("a record is cut short")
        try:
            plaintext = cipher.decrypt(nonce, sealed, _associated_data(key_id, context, offset))
        except InvalidTag:
            raise AuthenticationFailed("authentication failed") from None
        offset += length
        yield plaintext


def _read_exactly_into(file: BinaryIO, buffer: memoryview) -> bool:
    filled = 0
    while filled < len(buffer) and (count := file.readinto(buffer[filled:])):
        filled += count
    return filled == len(buffer)


def unsealed_into(file: BinaryIO, *, context: bytes, key_id: str, limit: int) -> bytearray:
    """The plaintext of the sealed object `file`, at most `limit` bytes, in one buffer.

    Each record is read into one reused buffer and decrypted straight into its place, so that a
    chunk costs one allocation of its size, as a plain read does; `unsealed_pieces` makes three.
    """
    if read_header(file) != key_id:
        raise AuthenticationFailed("sealed under another key")
    cipher = key_ring().cipher(key_id)
    plaintext = bytearray(limit)
    sealed_record = memoryview(bytearray(RECORD_MAX + TAG_BYTES))
    offset = 0
    with memoryview(plaintext) as target:
        while offset < limit and (record := _record_head(file)) is not None:
            length, nonce = record
            sealed = sealed_record[: length + TAG_BYTES]
            if not _read_exactly_into(file, sealed):
                raise AuthenticationFailed("a record is cut short")
            overflow = bytearray(length) if offset + length > limit else None
            try:
                cipher.decrypt_into(
                    nonce,
                    sealed,
                    _associated_data(key_id, context, offset),
                    target[offset : offset + length] if overflow is None else overflow,
                )
            except InvalidTag:
                raise AuthenticationFailed("authentication failed") from None
            if overflow is not None:
                target[offset:] = overflow[: limit - offset]
            offset = min(offset + length, limit)
    del plaintext[offset:]
    return plaintext


def unseal(data: bytes, *, context: bytes, key_id: str) -> bytes:
    """The plaintext of a whole sealed object held in memory."""
    return b"".join(unsealed_pieces(io.BytesIO(data), context=context, key_id=key_id))


def record_boundary(file: BinaryIO, *, position: int) -> int:
    """The file offset where the plaintext reaches `position`: where a record ends.

    Reads record headers only. `AuthenticationFailed` if no record ends there.
    """
    read_header(file)
    offset = 0
    while offset < position and (record := _record_head(file)) is not None:
        length, _ = record
        file.seek(length + TAG_BYTES, io.SEEK_CUR)
        offset += length
    boundary = file.tell()
    if offset != position or file.seek(0, io.SEEK_END) < boundary:
        raise AuthenticationFailed(f"no record ends at byte {position}")
    return boundary
