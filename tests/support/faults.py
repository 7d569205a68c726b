"""Faults injected into the chunk store and the spool through their own handles, on both backends.

Integrity and upkeep tests damage what is kept, leave the remains of interrupted writes, turn
the clock and make a store fail, without knowing where a backend keeps its bytes:

- `damage(store, key, how)`: a kept object with a byte flipped, cut to half, or gone (DAMAGES),
  as bit rot or a careless operator leaves it: the file changed in place, the object rewritten;
  `overwrite(store, key, content)` puts other bytes there, `swap` exchanges two keys' bytes;
- `leftover_make(store, key)`: what an interrupted write of `key` leaves (a temporary file, an
  unfinished multipart upload), named as `ChunkStore.leftovers` names it;
- `put_after(store, key, content, than=...)`: a write whose modification time, as the store
  keeps it, is later than that of another key (S3 keeps whole seconds);
- `Clock` (the `clock` fixture): django's `timezone.now`, the clock cleanup and retention judge
  ages by, moved on; a key looks old once the clock is past it (S3 has no settable
  modification time);
- `contents(store)`: every key's bytes and time and every leftover, to show nothing changed;
- `remains(store, prefix)`: every name a store's backend holds under a prefix, read around the
  store: temporary files, locks and unfinished uploads too; `read_around` reads one;
- `Faults` (the `chunk_store_faults` and `spool_faults` fixtures): the configured store
  classes themselves, with chosen operations raising or stalling, put in place through
  LUCID_CHUNK_STORE_BACKEND and LUCID_SPOOL_STORE_BACKEND.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from django.utils import timezone
from django.utils.module_loading import import_string

from chunks_app.storage.base import ChunkStore, validate_key
from chunks_app.storage.filesystem import FileSystemChunkStore
from chunks_app.storage.s3 import MULTIPART, S3ChunkStore

# How a kept file gets damaged, and how the error of the chunk then marked `damaged` starts.
DAMAGES = {"flipped": "hash mismatch", "truncated": "truncated", "deleted": "file missing"}
# How long `put_after` keeps writing until the store's clock has moved on, and by how much.
CLOCK_TICK_SECONDS = 5
CLOCK_STEP_SECONDS = 0.01


def damaged(content: bytes, how: str) -> bytes:
    """`content` with its middle byte flipped, or cut to half."""
    if how == "flipped":
        flipped = bytearray(content)
        flipped[len(flipped) // 2] ^= 0x01
        return bytes(flipped)
    if how == "truncated":
        return content[: len(content) // 2]
    raise ValueError(f"{how!r} is not a damage that leaves bytes; use one of {list(DAMAGES)}")


def damage(store: ChunkStore, key: str, how: str) -> None:
    """Damage what `store` keeps under `key` as `how` (one of DAMAGES) says, behind its back."""
    if how == "deleted":
        _remove(store, key)
    else:
        overwrite(store, key, damaged(read_around(store, key), how))


def overwrite(store: ChunkStore, key: str, content: bytes) -> None:
    """Put `content` in place of what `store` keeps under `key`, behind its back: the file
    rewritten in place (its links see it too), the object replaced."""
    validate_key(key)
    if isinstance(store, FileSystemChunkStore):
        (store.root / key).write_bytes(content)
    elif isinstance(store, S3ChunkStore):
        store.client.put_object(Bucket=store.bucket, Key=store.prefix + key, Body=content)
    else:
        raise TypeError(f"no way to reach around {store!r}")


def read_around(store: ChunkStore, name: str) -> bytes:
    """The bytes of a file or object `remains` names (a key, or a hidden file), read around
    the store: what a thief or a backup of the disk or the bucket would get."""
    if isinstance(store, FileSystemChunkStore):
        return (store.root / name).read_bytes()
    if isinstance(store, S3ChunkStore):
        answer = store.client.get_object(Bucket=store.bucket, Key=store.prefix + name)
        return answer["Body"].read()
    raise TypeError(f"no way to reach around {store!r}")


def swap(store: ChunkStore, key: str, other: str) -> None:
    """Put what `store` keeps under `key` and `other` in each other's place, behind its back."""
    content, other_content = read_around(store, key), read_around(store, other)
    overwrite(store, key, other_content)
    overwrite(store, other, content)


def _remove(store: ChunkStore, key: str) -> None:
    validate_key(key)
    if isinstance(store, FileSystemChunkStore):
        (store.root / key).unlink()
    elif isinstance(store, S3ChunkStore):
        store.client.delete_object(Bucket=store.bucket, Key=store.prefix + key)
    else:
        raise TypeError(f"no way to reach around {store!r}")


def leftover_make(store: ChunkStore, key: str) -> str:
    """Leave what an interrupted write of `key` leaves; return its name in `store.leftovers`."""
    validate_key(key)
    if isinstance(store, FileSystemChunkStore):
        path = store.root / key
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        temporary.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(b"half written")
        return temporary.relative_to(store.root).as_posix()
    if isinstance(store, S3ChunkStore):
        upload = store.client.create_multipart_upload(Bucket=store.bucket, Key=store.prefix + key)
        return f"{MULTIPART}{key}:{upload['UploadId']}"
    raise TypeError(f"no way to interrupt a write into {store!r}")


def leftover_names(store: ChunkStore) -> list[str]:
    """Every leftover of an interrupted write in `store`, however fresh."""
    return store.leftovers(older_than=math.inf)


def put_after(store: ChunkStore, key: str, content: bytes, *, than: str) -> float:
    """Write `key` so that the store dates it later than `than` (by CLOCK_STEP_SECONDS at
    least): again, until its clock moved. Returns a moment in between, in epoch seconds."""
    deadline = time.monotonic() + CLOCK_TICK_SECONDS
    earlier = store.modified_at(than)
    while True:
        store.put(key, [content])
        later = store.modified_at(key)
        if later > earlier + CLOCK_STEP_SECONDS:
            return (earlier + later) / 2
        if time.monotonic() > deadline:
            raise AssertionError(f"{store!r} still dates {key} no later than {than}")
        time.sleep(0.1)


def moment(timestamp: float) -> datetime:
    """Epoch seconds, as `ChunkStore.modified_at` gives them, as an aware datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass
class Clock:
    """django's `timezone.now`, moved by `offset` while installed (the `clock` fixture)."""

    offset: timedelta = timedelta()
    real_now: Any = field(default=timezone.now, repr=False)

    def now(self) -> datetime:
        return self.real_now() + self.offset

    def advance(self, seconds: float) -> datetime:
        """Move the clock on: whatever exists now looks `seconds` older."""
        self.offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, to: datetime) -> datetime:
        """Move the clock to `to` (from there on it runs on as the real one)."""
        self.offset = to - self.real_now()
        return self.now()


def contents(store: ChunkStore) -> dict[str, tuple[bytes, float]]:
    """Every key's bytes and modification time, and every leftover by name."""
    held: dict[str, tuple[bytes, float]] = {}
    for key in store.keys(""):
        with store.open(key) as kept:
            held[key] = (kept.read(), store.modified_at(key))
    for name in leftover_names(store):
        held[name] = (b"", 0.0)
    return held


def remains(store: ChunkStore, prefix: str = "") -> list[str]:
    """Every file or object under `prefix` (a key or a key ending in "/"), hidden ones and
    unfinished uploads ("<name> (unfinished)") included, relative to the store."""
    if isinstance(store, FileSystemChunkStore):
        root = store.root
        start = root / prefix.rstrip("/") if prefix.endswith("/") else root
        names = (path.relative_to(root).as_posix() for path in start.rglob("*") if path.is_file())
        return sorted(name for name in names if name.startswith(prefix))
    if isinstance(store, S3ChunkStore):
        client, bucket, where = store.client, store.bucket, store.prefix + prefix
        objects = client.list_objects_v2(Bucket=bucket, Prefix=where).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=where).get("Uploads", [])
        return sorted(
            [entry["Key"].removeprefix(store.prefix) for entry in objects]
            + [f"{upload['Key'].removeprefix(store.prefix)} (unfinished)" for upload in uploads]
        )
    raise TypeError(f"no way to look around {store!r}")


@dataclass
class Fault:
    operation: str
    under: str
    error: Exception | None
    seconds: float
    times: int | None


@dataclass
class Faults:
    """What a faulty store does wrong: operations that raise or stall, for keys under a prefix.

    The store is built from its options again whenever a setting changes; the one `Faults` in
    the options keeps the faults across those rebuilds. `calls` lists each (operation, key).
    """

    active: list[Fault] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def fail(
        self, operation: str, error: Exception, *, under: str = "", times: int | None = None
    ) -> None:
        """Raise `error` from `operation` on keys starting with `under` (`times` times)."""
        self.active.append(Fault(operation, under, error, 0.0, times))

    def stall(self, operation: str, seconds: float, *, under: str = "") -> None:
        """Make `operation` on keys starting with `under` take `seconds` longer."""
        self.active.append(Fault(operation, under, None, seconds, None))

    def clear(self) -> None:
        self.active.clear()

    def apply(self, operation: str, key: str) -> None:
        self.calls.append((operation, key))
        for fault in list(self.active):
            if fault.operation != operation or not key.startswith(fault.under):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.active.remove(fault)
            if fault.seconds:
                time.sleep(fault.seconds)
            if fault.error is not None:
                raise fault.error


class FaultyStore(ChunkStore):
    """Mixed in before a real store class: every operation first does what `faults` says."""

    def __init__(self, *, faults: Faults, **options: Any) -> None:
        super().__init__(**options)
        self.faults = faults

    def put(self, key: str, content: Iterable[bytes], *, if_absent: bool = False) -> int:
        self.faults.apply("put", key)
        return super().put(key, content, if_absent=if_absent)

    def put_from(self, key: str, *, source: ChunkStore, source_key: str) -> int:
        self.faults.apply("put_from", key)
        return super().put_from(key, source=source, source_key=source_key)

    def open(self, key: str) -> BinaryIO:
        self.faults.apply("open", key)
        return super().open(key)

    def delete(self, key: str) -> None:
        self.faults.apply("delete", key)
        super().delete(key)

    def delete_prefix(self, prefix: str) -> int:
        self.faults.apply("delete_prefix", prefix)
        return super().delete_prefix(prefix)

    def exists(self, key: str) -> bool:
        self.faults.apply("exists", key)
        return super().exists(key)

    def size(self, key: str) -> int:
        self.faults.apply("size", key)
        return super().size(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        self.faults.apply("keys", prefix)
        return super().keys(prefix)

    def modified_at(self, key: str) -> float:
        self.faults.apply("modified_at", key)
        return super().modified_at(key)

    def leftovers(self, *, older_than: float) -> list[str]:
        self.faults.apply("leftovers", "")
        return super().leftovers(older_than=older_than)

    def remove_leftover(self, name: str) -> None:
        self.faults.apply("remove_leftover", name)
        super().remove_leftover(name)

    def used_bytes(self) -> int:
        self.faults.apply("used_bytes", "")
        return super().used_bytes()

    def free_bytes(self) -> int:
        self.faults.apply("free_bytes", "")
        return super().free_bytes()

    def check_writable(self) -> None:
        self.faults.apply("check_writable", "")
        super().check_writable()


class FaultyFileSystemChunkStore(FaultyStore, FileSystemChunkStore):
    pass


class FaultyS3ChunkStore(FaultyStore, S3ChunkStore):
    pass


FAULTY = {FileSystemChunkStore: FaultyFileSystemChunkStore, S3ChunkStore: FaultyS3ChunkStore}


def _dotted(store_class: type) -> str:
    return f"{store_class.__module__}.{store_class.__qualname__}"


def faulty_backend(backend: str) -> str:
    """The dotted path of the faulty store class standing in for `backend`'s."""
    return _dotted(FAULTY[import_string(backend)])


def faulty_chunk_store(settings: Any) -> Faults:
    """Make the configured chunk store faulty (pytest-django's `settings`); its `Faults`."""
    faults = Faults()
    settings.LUCID_CHUNK_STORE_BACKEND = faulty_backend(settings.LUCID_CHUNK_STORE_BACKEND)
    settings.LUCID_CHUNK_STORE_OPTIONS = {**settings.LUCID_CHUNK_STORE_OPTIONS, "faults": faults}
    return faults


def faulty_spool(settings: Any) -> Faults:
    """Make the configured spool faulty (the default directory one too); its `Faults`."""
    faults = Faults()
    if settings.LUCID_SPOOL_STORE_BACKEND:
        backend = settings.LUCID_SPOOL_STORE_BACKEND
        options = settings.LUCID_SPOOL_STORE_OPTIONS
    else:
        backend = _dotted(FileSystemChunkStore)
        options = {"root": str(Path(settings.LUCID_STORAGE_PATH) / "spool")}
    settings.LUCID_SPOOL_STORE_BACKEND = faulty_backend(backend)
    settings.LUCID_SPOOL_STORE_OPTIONS = {**options, "faults": faults}
    return faults
