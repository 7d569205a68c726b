"""Uploads in the spool: packed as LZ4 when they shrink, raw otherwise, read back unchanged."""

import uuid

import pytest

from chunks_app.spool import get_spool, spool_key_is_raw, spool_open, spool_upload
from tests.chunks_app.helpers import random_bytes, screen_like

SESSION_ID = uuid.UUID("3f2b8c1e-6d4a-4f7b-9a0e-2c5d8e1f4a7b")


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def test_a_compressible_upload_is_packed_and_read_back_unchanged(storage_paths):
    data = screen_like(3_000_000)
    key, size = spool_upload(
        session_id=SESSION_ID, chunk_id=uuid.uuid4(), pieces=_pieces(data, 1 << 20)
    )

    assert size == len(data)
    assert key.endswith(".lz4") and not spool_key_is_raw(key)
    assert get_spool().size(key) < len(data) / 2
    with spool_open(key) as spooled:
        assert spooled.read() == data


@pytest.mark.parametrize("data", [random_bytes(300_000), b""], ids=["incompressible", "empty"])
def test_an_upload_that_does_not_shrink_is_spooled_raw(storage_paths, data):
    key, size = spool_upload(
        session_id=SESSION_ID, chunk_id=uuid.uuid4(), pieces=_pieces(data, 4096)
    )

    assert size == len(data)
    assert spool_key_is_raw(key)
    assert (storage_paths.LUCID_STORAGE_PATH / "spool" / key).read_bytes() == data
    with spool_open(key) as spooled:
        assert spooled.read() == data


def test_a_failing_upload_leaves_nothing_in_the_spool(storage_paths):
    def cut_off():
        yield screen_like(100_000)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        spool_upload(session_id=SESSION_ID, chunk_id=uuid.uuid4(), pieces=cut_off())

    assert list(get_spool().keys()) == []
    assert get_spool().leftovers(older_than=float("inf")) == []
