"""The chunk store and the spool: pick the configured backends once per process and share them.

`LUCID_CHUNK_STORE_BACKEND` is the dotted path of a `ChunkStore` class and
`LUCID_CHUNK_STORE_OPTIONS` the keyword arguments it is built with, e.g. `{"root": "/data"}`.
`LUCID_SPOOL_STORE_BACKEND` and `LUCID_SPOOL_STORE_OPTIONS` do the same for the spool; without
them the spool is the directory `spool` under LUCID_STORAGE_PATH. Changing any of these settings
(as `override_settings` does in tests) drops the cached stores.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from chunks_app.storage.base import (
    ChunkExistsError,
    ChunkNotFoundError,
    ChunkStore,
    ChunkStoreError,
    InvalidKeyError,
    StoredEntry,
    StoreUsage,
    validate_key,
)

__all__ = [
    "DEFAULT_BACKEND",
    "ChunkExistsError",
    "ChunkNotFoundError",
    "ChunkStore",
    "ChunkStoreError",
    "InvalidKeyError",
    "StoreUsage",
    "StoredEntry",
    "get_chunk_store",
    "get_spool",
    "validate_key",
]

DEFAULT_BACKEND = "chunks_app.storage.filesystem.FileSystemChunkStore"
_SETTINGS = frozenset(
    {
        "LUCID_CHUNK_STORE_BACKEND",
        "LUCID_CHUNK_STORE_OPTIONS",
        "LUCID_SPOOL_STORE_BACKEND",
        "LUCID_SPOOL_STORE_OPTIONS",
        "LUCID_STORAGE_PATH",
    }
)


@functools.cache
def get_chunk_store() -> ChunkStore:
    return _store_built(
        "LUCID_CHUNK_STORE",
        backend=getattr(settings, "LUCID_CHUNK_STORE_BACKEND", DEFAULT_BACKEND),
        options=getattr(settings, "LUCID_CHUNK_STORE_OPTIONS", {}),
    )


@functools.cache
def get_spool() -> ChunkStore:
    """Where received bytes wait, fsynced (or in the object store), until they are stored."""
    backend = getattr(settings, "LUCID_SPOOL_STORE_BACKEND", "")
    if not backend:
        return _store_built(
            "LUCID_SPOOL_STORE",
            backend=DEFAULT_BACKEND,
            options={"root": str(Path(settings.LUCID_STORAGE_PATH) / "spool")},
        )
    return _store_built(
        "LUCID_SPOOL_STORE",
        backend=backend,
        options=getattr(settings, "LUCID_SPOOL_STORE_OPTIONS", {}),
    )


def _store_built(setting: str, *, backend: str, options: dict[str, Any]) -> ChunkStore:
    try:
        store_class = import_string(backend)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"{setting}_BACKEND {backend!r} cannot be imported: {exc}"
        ) from exc
    if not (isinstance(store_class, type) and issubclass(store_class, ChunkStore)):
        raise ImproperlyConfigured(f"{setting}_BACKEND {backend!r} is not a ChunkStore subclass.")
    try:
        return store_class(**options)
    except TypeError as exc:
        raise ImproperlyConfigured(f"{setting}_OPTIONS do not fit {backend}: {exc}") from exc


@receiver(setting_changed)
def _drop_cached_stores(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS:
        get_chunk_store.cache_clear()
        get_spool.cache_clear()
