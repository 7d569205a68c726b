"""Chunk store on an S3-compatible object store (AWS S3, SeaweedFS, MinIO, Ceph RGW): one object
per key under `prefix` in `bucket`.

An object PUT is atomic (a key names nothing, the old bytes or the new ones, never a part) and
durable once answered; it carries the body's SHA-256, so bytes changed on the way are refused.
The spool's writes are put-if-absent (`If-None-Match: *`): a key once written is never replaced.
Content of `part_size` or more goes up as a multipart upload, aborted if
the content fails; uploads that were never completed nor aborted (a killed process) are the
store's leftovers. botocore's errors come out as `ChunkStoreError` saying what to check.

What the filesystem store relies on and S3 lacks, and what this store does instead:
- hard links (`put_from`): a server-side copy from another S3 store of the same service, else
  the bytes pass through this process;
- directory fsync: nothing to flush, a PUT is durable when it returns;
- settable modification times: the object's Last-Modified, set by the service at upload;
- free space: S3 has none to measure; `quota_bytes` less the stored bytes stands in for it, and
  without a quota `free_bytes` is `UNLIMITED_BYTES`;
- local paths: `open` returns a seekable reader over ranged GETs, so downloads are read and sent
  by the worker (no sendfile);
- atomic prefix deletes: batch deletes of up to 1000 keys, repeated while writers add keys.
"""

from __future__ import annotations

import functools
import io
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from chunks_app.storage.base import (
    ChunkExistsError,
    ChunkNotFoundError,
    ChunkStore,
    ChunkStoreError,
    ChunkStoreFull,
    InvalidKeyError,
    StoredEntry,
    is_valid_key,
    validate_key,
    validate_prefix,
)

MIB = 1024 * 1024
# S3's smallest part but the last one.
MIN_PART_SIZE = 5 * MIB
DEFAULT_PART_SIZE = 8 * MIB
# What `free_bytes` reports without a quota: 1 EiB, "no limit" rather than a misleading 0.
UNLIMITED_BYTES = 2**60
# How long a listing of the store's bytes serves `free_bytes` (a health check runs it often).
USED_BYTES_FRESH_SECONDS = 60
DELETE_BATCH = 1000
# How many times the keys under a prefix being removed are listed while writers still add some.
REMOVAL_PASSES = 3
READ_BUFFER = 64 * 1024
# Leftover names: ".multipart/<key>:<upload id>" and ".health/<probe>"; no key holds ":".
MULTIPART = ".multipart/"
HEALTH = ".health/"
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
# A conditional write that found the key taken, or raced another write of it.
_TAKEN = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_FULL = frozenset({"QuotaExceeded", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded"})
_FORBIDDEN = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
)
_INSUFFICIENT_STORAGE = 507


# Every PUT carries the SHA-256 of its body, which the service checks before it keeps anything.
CHECKSUM = "SHA256"
_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> boto3.session.Session:
    """One boto3 session per process: it loads the S3 service model once for all clients.
    Clients are made under _SESSION_LOCK (a session is not thread-safe, its clients are)."""
    return boto3.session.Session()


class S3ChunkStore(ChunkStore):
    """Chunks as objects under a prefix of an S3 bucket."""

    usage_from_database = True

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region_name: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        quota_bytes: int = 0,
    ) -> None:
        """Without `access_key_id`, boto3 finds credentials as usual (AWS_ACCESS_KEY_ID...,
        its config files, an instance role)."""
        prefix = prefix.strip("/")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url or None
        self.part_size = max(part_size, MIN_PART_SIZE)
        self.quota_bytes = quota_bytes
        self._client_options = {
            "endpoint_url": self.endpoint_url,
            "region_name": region_name or None,
            "aws_access_key_id": access_key_id or None,
            "aws_secret_access_key": secret_access_key or None,
        }
        self._client: Any = None
        self._used_bytes_measured: tuple[float, int] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location!r}>"

    @property
    def client(self) -> Any:
        """The store's boto3 S3 client, made on first use and shared by threads."""
        if self._client is None:
            with _SESSION_LOCK:
                if self._client is None:
                    config = Config(
                        # Services other than AWS seldom resolve bucket host names.
                        s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                        retries={"max_attempts": 5, "mode": "standard"},
                        connect_timeout=5,
                        read_timeout=60,
                    )
                    self._client = _session().client("s3", config=config, **self._client_options)
        return self._client

    def put(self, key: str, content: Iterable[bytes], *, if_absent: bool = False) -> int:
        """With `if_absent`, the PUT (or the completion of a multipart upload) is conditional
        on `If-None-Match: *`, which the service checks atomically."""
        object_key = self._object_key(key)
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        if isinstance(content, bytes | bytearray | memoryview):
            content = [content]
        buffer = bytearray()
        pieces = iter(content)
        for piece in pieces:
            buffer += piece
            if len(buffer) >= self.part_size:
                return self._put_in_parts(key, object_key, buffer, pieces, condition=condition)
        with self._errors("write", key, if_absent=bool(condition)):
            self.client.put_object(
                Bucket=self.bucket,
                Key=object_key,
                Body=bytes(buffer),
                ChecksumAlgorithm=CHECKSUM,
                **condition,
            )
        return len(buffer)

    def _put_in_parts(
        self,
        key: str,
        object_key: str,
        buffer: bytearray,
        pieces: Iterator[bytes],
        *,
        condition: dict[str, str],
    ) -> int:
        """A multipart upload of `buffer` and the rest of `pieces`, aborted if anything fails."""
        with self._errors("start an upload of", key):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=object_key, ChecksumAlgorithm=CHECKSUM
            )["UploadId"]
        parts: list[dict[str, Any]] = []
        written = 0

        def send(body: bytes) -> None:
            number = len(parts) + 1
            with self._errors("upload a part of", key):
                answer = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumAlgorithm=CHECKSUM,
                )
            parts.append(
                {
                    "PartNumber": number,
                    "ETag": answer["ETag"],
                    "ChecksumSHA256": answer["ChecksumSHA256"],
                }
            )

        try:
            while True:
                while len(buffer) >= self.part_size:
                    send(bytes(buffer[: self.part_size]))
                    written += self.part_size
                    del buffer[: self.part_size]
                piece = next(pieces, None)
                if piece is None:
                    break
                buffer += piece
            if buffer:
                send(bytes(buffer))
                written += len(buffer)
            with self._errors("complete the upload of", key, if_absent=bool(condition)):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **condition,
                )
        except BaseException:
            with suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id
                )
            raise
        return written

    def put_from(self, key: str, *, source: ChunkStore, source_key: str) -> int:
        """A server-side copy from an S3 store of the same service, else a copy through this
        process. Either way the copy is a new object with a new Last-Modified, as orphan
        cleanup needs."""
        if not (isinstance(source, S3ChunkStore) and source.endpoint_url == self.endpoint_url):
            return super().put_from(key, source=source, source_key=source_key)
        object_key = self._object_key(key)
        copy_source = {"Bucket": source.bucket, "Key": source._object_key(source_key)}
        with self._errors("copy into", key, missing=f"{source_key!r} in {source.location}"):
            self.client.copy_object(Bucket=self.bucket, Key=object_key, CopySource=copy_source)
        return self.size(key)

    def open(self, key: str) -> BinaryIO:
        object_key = self._object_key(key)
        with self._errors("open", key):
            answer = self.client.get_object(Bucket=self.bucket, Key=object_key)
        reader = _ObjectReader(self, key, answer)
        return cast(BinaryIO, io.BufferedReader(reader, buffer_size=READ_BUFFER))

    def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=object_key)

    def delete_prefix(self, prefix: str) -> int:
        """Remove the keys under `prefix` in batches; keys written meanwhile go in another pass."""
        validate_prefix(prefix)
        removed = 0
        for _ in range(REMOVAL_PASSES):
            found = list(self.keys(prefix))
            if not found:
                return removed
            for start in range(0, len(found), DELETE_BATCH):
                self._delete_batch(found[start : start + DELETE_BATCH])
            removed += len(found)
        if any(True for _ in self.keys(prefix)):
            raise ChunkStoreError(
                f"Could not delete everything under {prefix!r} in {self.location}: keys were "
                f"still being written after {REMOVAL_PASSES} passes. Check what writes there."
            )
        return removed

    def _delete_batch(self, keys: list[str]) -> None:
        objects = [{"Key": self.prefix + key} for key in keys]
        with self._errors("delete", keys[0]):
            answer = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
        failed = [error for error in answer.get("Errors", []) if error.get("Code") != "NoSuchKey"]
        if failed:
            first = failed[0]
            raise ChunkStoreError(
                f"Could not delete {len(failed)} keys in {self.location}, first "
                f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}. "
                "Check that the credentials may delete objects in the bucket."
            )

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ChunkNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def modified_at(self, key: str) -> float:
        return self._head(key)["LastModified"].timestamp()

    def _head(self, key: str) -> dict[str, Any]:
        object_key = self._object_key(key)
        with self._errors("inspect", key):
            return self.client.head_object(Bucket=self.bucket, Key=object_key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Yield stored keys under `prefix` in key order; objects whose names are not keys
        (the store's own ".health/" probes, anything written by others) are skipped."""
        validate_prefix(prefix)
        return (key for key, _, _ in self._objects(prefix) if is_valid_key(key))

    def entries(self, prefix: str = "") -> Iterator[StoredEntry]:
        """From the listing itself: one request per 1000 keys, none per key."""
        validate_prefix(prefix)
        for key, size, modified_at in self._objects(prefix):
            if is_valid_key(key):
                yield StoredEntry(key, size, modified_at)

    def _objects(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """Name (relative to the store's prefix), size and Last-Modified of every object under
        `prefix`, one request per 1000."""
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("list", prefix or "everything"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(self.prefix) :]
                    yield name, int(entry["Size"]), entry["LastModified"].timestamp()

    def leftovers(self, *, older_than: float) -> list[str]:
        """Multipart uploads begun before `older_than` and never completed nor aborted, and
        health probes that could not be deleted."""
        found = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._errors("list unfinished uploads in", self.location):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", []):
                    key = upload["Key"][len(self.prefix) :]
                    if is_valid_key(key) and upload["Initiated"].timestamp() < older_than:
                        found.append(f"{MULTIPART}{key}:{upload['UploadId']}")
        for name, _, modified_at in self._objects(HEALTH):
            if modified_at < older_than:
                found.append(name)
        return sorted(found)

    def remove_leftover(self, name: str) -> None:
        text = name if isinstance(name, str) else ""
        key, _, upload_id = text.removeprefix(MULTIPART).partition(":")
        if text.startswith(MULTIPART) and upload_id:
            object_key = self._object_key(key)
            with suppress(ChunkNotFoundError), self._errors("abort the upload of", key):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id
                )
        elif text.startswith(HEALTH) and is_valid_key(text[1:]):
            with self._errors("delete", name):
                self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)
        else:
            raise InvalidKeyError(
                f"{name!r} is not a leftover of an interrupted write in {self.location}."
            )

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def used_bytes(self) -> int:
        """Add up the sizes of all objects under the prefix: one request per 1000 objects."""
        used_bytes = sum(size for _, size, _ in self._objects(""))
        self._used_bytes_measured = (time.monotonic(), used_bytes)
        return used_bytes

    def free_bytes(self) -> int:
        """`quota_bytes` less the stored bytes (listed at most every USED_BYTES_FRESH_SECONDS),
        or `UNLIMITED_BYTES` without a quota."""
        if self.quota_bytes <= 0:
            return UNLIMITED_BYTES
        measured = self._used_bytes_measured
        if measured is None or time.monotonic() - measured[0] > USED_BYTES_FRESH_SECONDS:
            used_bytes = self.used_bytes()
        else:
            used_bytes = measured[1]
        return max(self.quota_bytes - used_bytes, 0)

    def check_writable(self) -> None:
        """Write and delete a small probe object under ".health/"."""
        probe = f"{HEALTH}{secrets.token_hex(8)}.tmp"
        with self._errors("write a probe object in", self.location):
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + probe, Body=b"")
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + probe)

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return self.prefix + key

    @contextmanager
    def _errors(
        self, action: str, key: str, *, missing: str | None = None, if_absent: bool = False
    ) -> Iterator[None]:
        """botocore's errors as ours; a missing object (or `missing`) as `ChunkNotFoundError`,
        a failed `if_absent` condition as `ChunkExistsError`."""
        try:
            yield
        except ClientError as exc:
            raise self._error(exc, action, key, missing=missing, if_absent=if_absent) from exc
        except NoCredentialsError as exc:
            raise ChunkStoreError(
                f"Could not {action} {key} in {self.location}: {exc}. Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or their _FILE variants) or give this host an S3 role."
            ) from exc
        except BotoCoreError as exc:
            raise ChunkStoreError(
                f"Could not {action} {key} in {self.location}: {exc}. Check that the S3 endpoint "
                f"{self.endpoint_url or '(AWS)'} is reachable and answers."
            ) from exc

    def _error(
        self, exc: ClientError, action: str, key: str, *, missing: str | None, if_absent: bool
    ) -> ChunkStoreError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND:
            return ChunkNotFoundError(
                f"Nothing is stored under {missing or repr(key)} in {self.location}."
            )
        if if_absent and code in _TAKEN:
            return ChunkExistsError(
                f"{key!r} already exists in {self.location}: it was kept and the new bytes "
                "were not stored."
            )
        message = f"Could not {action} {key} in {self.location}: {code} {error.get('Message', '')}"
        if code in _FULL or status == _INSUFFICIENT_STORAGE:
            return ChunkStoreFull(f"{message}. Check the bucket's quota and the service's space.")
        if code == "NoSuchBucket":
            advice = f"that the bucket {self.bucket} exists (LUCID_S3_BUCKET)"
        elif code in _FORBIDDEN:
            advice = (
                f"that the credentials may read and write objects in the bucket {self.bucket} "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, the bucket's policy)"
            )
        else:
            advice = f"the S3 service's health at {self.endpoint_url or 'AWS'}"
        return ChunkStoreError(f"{message.rstrip()}. Check {advice}.")


class _ObjectReader(io.RawIOBase):
    """A read-only, seekable file over one object: reads stream one GET; a seek starts a ranged
    GET, pinned to the first answer's ETag so that a replaced object is noticed, not mixed in."""

    def __init__(self, store: S3ChunkStore, key: str, answer: dict[str, Any]) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._etag = answer.get("ETag")
        self._length = int(answer["ContentLength"])
        self._body: Any = answer["Body"]
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        target = max(base + offset, 0)
        if target != self._position:
            self._close_body()
            self._position = target
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._length:
            return 0
        store = self._store
        with store._errors("read", self._key):
            if self._body is None:
                pinned = {"IfMatch": self._etag} if self._etag else {}
                self._body = store.client.get_object(
                    Bucket=store.bucket,
                    Key=store._object_key(self._key),
                    Range=f"bytes={self._position}-",
                    **pinned,
                )["Body"]
            data = self._body.read(min(len(buffer), self._length - self._position))
        if not data:
            raise ChunkStoreError(
                f"{self._key} in {store.location} ended at byte {self._position} of "
                f"{self._length}. Check the S3 service's health."
            )
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _close_body(self) -> None:
        if self._body is not None:
            with suppress(Exception):
                self._body.close()
            self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()
