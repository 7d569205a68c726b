"""The chunk store: pick the configured backend once per process and share it.

`LUCID_CHUNK_STORE_BACKEND` is the dotted path of a `ChunkStore` class and
`LUCID_CHUNK_STORE_OPTIONS` the keyword arguments it is built with, e.g. `{"root": "/data"}`.
Changing either setting (as `override_settings` does in tests) drops the cached store.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from chunks_app.storage.base import (
    ChunkNotFoundError,
    ChunkStore,
    ChunkStoreError,
    InvalidKeyError,
    StoreUsage,
    validate_key,
)

__all__ = [
    "DEFAULT_BACKEND",
    "ChunkNotFoundError",
    "ChunkStore",
    "ChunkStoreError",
    "InvalidKeyError",
    "StoreUsage",
    "get_chunk_store",
    "validate_key",
]

DEFAULT_BACKEND = "chunks_app.storage.filesystem.FileSystemChunkStore"
_SETTINGS = frozenset({"LUCID_CHUNK_STORE_BACKEND", "LUCID_CHUNK_STORE_OPTIONS"})


@functools.cache
def get_chunk_store() -> ChunkStore:
    backend = getattr(settings, "LUCID_CHUNK_STORE_BACKEND", DEFAULT_BACKEND)
    options: dict[str, Any] = getattr(settings, "LUCID_CHUNK_STORE_OPTIONS", {})
    try:
        store_class = import_string(backend)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"LUCID_CHUNK_STORE_BACKEND {backend!r} cannot be imported: {exc}"
        ) from exc
    if not (isinstance(store_class, type) and issubclass(store_class, ChunkStore)):
        raise ImproperlyConfigured(
            f"LUCID_CHUNK_STORE_BACKEND {backend!r} is not a ChunkStore subclass."
        )
    try:
        return store_class(**options)
    except TypeError as exc:
        raise ImproperlyConfigured(
            f"LUCID_CHUNK_STORE_OPTIONS do not fit {backend}: {exc}"
        ) from exc


@receiver(setting_changed)
def _drop_cached_chunk_store(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS:
        get_chunk_store.cache_clear()
