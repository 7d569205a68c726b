"""The service's chunk store and spool in a bucket of a test `weed mini`, for one test."""

import uuid

from chunks_app.storage import get_chunk_store, get_spool
from chunks_app.storage.s3 import S3ChunkStore
from tests.support.s3 import S3Service

S3_STORE = "chunks_app.storage.s3.S3ChunkStore"


def object_storage_use(settings, service: S3Service, *, quota_bytes: int) -> S3ChunkStore:
    """Point the chunk store and the spool at a fresh prefix of `service`; return the spool."""
    prefix = f"test-{uuid.uuid4().hex}"
    settings.LUCID_SPOOL_STORE_BACKEND = settings.LUCID_CHUNK_STORE_BACKEND = S3_STORE
    settings.LUCID_SPOOL_STORE_OPTIONS = service.store_options(prefix=f"{prefix}/spool")
    settings.LUCID_CHUNK_STORE_OPTIONS = {
        **service.store_options(prefix=f"{prefix}/chunks"),
        "quota_bytes": quota_bytes,
    }
    settings.LUCID_STORAGE_QUOTA_BYTES = quota_bytes
    spool = get_spool()
    assert isinstance(spool, S3ChunkStore) and isinstance(get_chunk_store(), S3ChunkStore)
    return spool
