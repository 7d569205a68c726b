"""The chunk store interface: what every backend offers and the errors it raises.

Keys are built by callers from UUIDs and integers only, and every backend checks them with
`validate_key` before touching storage, so no key can name anything outside the store.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import StorageFull, StorageUnavailable

KEY_MAX_LENGTH = 200
COPY_PIECE = 1024 * 1024
_KEY_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
_KEY_PATTERN = re.compile(rf"{_KEY_SEGMENT}(?:/{_KEY_SEGMENT})*")


class ChunkStoreError(StorageUnavailable):
    pass


class ChunkNotFoundError(ChunkStoreError):
    pass


class ChunkExistsError(ChunkStoreError):
    """A write that must not replace anything found the key taken."""


class ChunkStoreFull(ChunkStoreError, StorageFull):
    """The store has no space or quota left: every backend raises this for a full store."""


class InvalidKeyError(ChunkStoreError):
    pass


@dataclass(frozen=True, slots=True)
class StoreUsage:
    path: str
    used_bytes: int
    free_bytes: int


@dataclass(frozen=True, slots=True)
class StoredEntry:
    key: str
    size: int
    modified_at: float


def is_valid_key(key: str) -> bool:
    return len(key) <= KEY_MAX_LENGTH and _KEY_PATTERN.fullmatch(key) is not None


def validate_key(key: str) -> None:
    """Reject keys that are not "/"-separated segments of letters, digits, "_", "-" and "."

    A segment may not start with ".", which also rules out "." and ".." and keeps dot-names
    free for a backend's own temporary files.
    """
    if not isinstance(key, str) or not is_valid_key(key):
        raise InvalidKeyError(
            f"Invalid chunk store key {key!r}: use at most {KEY_MAX_LENGTH} characters in "
            '"/"-separated segments of letters, digits, "_", "-" and ".", not starting with ".".'
        )


def validate_prefix(prefix: str) -> None:
    """Accept "" or a key, optionally ending in "/", as a prefix for `ChunkStore.keys`."""
    if prefix:
        validate_key(prefix.removesuffix("/"))


class ChunkStore(ABC):
    # Whether `used_bytes` is a listing too slow and costly to repeat (an object store): the
    # service then counts the bytes its rows say it stored instead.
    usage_from_database = False

    @abstractmethod
    def put(self, key: str, content: Iterable[bytes], *, if_absent: bool = False) -> int:
        """Store `content` under `key` atomically and durably; return the bytes written.

        With `if_absent`, a key that already holds bytes keeps them and `ChunkExistsError` is
        raised: the spool's writes use it, so no race or replayed request replaces bytes that
        were acknowledged.
        """

    def put_from(self, key: str, *, source: ChunkStore, source_key: str) -> int:
        """Store what `source` holds under `source_key` under `key`, as `put` would.

        Both sides must never be changed in place (spooled and stored chunks never are): a
        backend may then share the bytes instead of copying them.
        """
        with source.open(source_key) as content:
            return self.put(key, iter(lambda: content.read(COPY_PIECE), b""))

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open the stored bytes for reading; raise `ChunkNotFoundError` if there are none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """Return the stored size in bytes; raise `ChunkNotFoundError` if there is none."""

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Yield the stored keys that start with `prefix`."""

    def entries(self, prefix: str = "") -> Iterator[StoredEntry]:
        """The stored keys under `prefix` with their size and modification time, in the order
        of `keys`; a key removed meanwhile is left out."""
        for key in self.keys(prefix):
            try:
                yield StoredEntry(key, self.size(key), self.modified_at(key))
            except ChunkNotFoundError:
                continue

    @abstractmethod
    def modified_at(self, key: str) -> float:
        """When `key` was last written, in epoch seconds; raise `ChunkNotFoundError` if missing."""

    @abstractmethod
    def leftovers(self, *, older_than: float) -> list[str]:
        """Temporary files of interrupted writes last modified before `older_than` (epoch seconds).

        The names are paths relative to the store, not keys: pass them to `remove_leftover`.
        """

    @abstractmethod
    def remove_leftover(self, name: str) -> None:
        """Remove one of the `leftovers`; a missing one is not an error."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store keeps its content, for operators to read."""

    @abstractmethod
    def used_bytes(self) -> int:
        """Bytes held by the store; may be slow (a walk of the whole store)."""

    @abstractmethod
    def free_bytes(self) -> int:
        """Bytes the store can still take; cheap enough for every health check."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise `ChunkStoreError` unless a write would succeed now; cheap, changes nothing."""

    def usage(self) -> StoreUsage:
        return StoreUsage(
            path=self.location, used_bytes=self.used_bytes(), free_bytes=self.free_bytes()
        )

    def delete_prefix(self, prefix: str) -> int:
        """Remove everything under `prefix` (a key ending in "/"); return how many keys went."""
        removed = 0
        for key in list(self.keys(prefix)):
            self.delete(key)
            removed += 1
        return removed
