"""Writes that lose the race to their session's deletion: a 404, and none of its files left."""

import io

import pytest

from chunks_app.services import (
    chunk_ingest,
    session_files_delete,
    session_stop,
    session_stream_append,
)
from chunks_app.spool import get_spool
from chunks_app.storage import ChunkStoreError
from core.errors import NotFound
from sessions_app.models import Session
from sessions_app.services import session_delete
from tests.chunks_app.helpers import CHUNK_SIZE, files_of_session, screen_like
from tests.support.faults import remains

pytestmark = pytest.mark.django_db(transaction=True)


class BodyDuringWhichTheSessionIsDeleted(io.BytesIO):
    """A recorder's chunk body; once its last byte is read, an operator deletes the session."""

    def __init__(self, data: bytes, *, session: Session) -> None:
        super().__init__(data)
        self.session = session

    def read(self, size: int | None = -1) -> bytes:
        piece = super().read(size)
        if not piece and Session.objects.filter(pk=self.session.pk).exists():
            session_delete(session=self.session)
        return piece


def _deleted_meanwhile(session: Session) -> Session:
    """The session as a request loaded it, deleted before that request writes."""
    loaded = Session.objects.get(pk=session.pk)
    session_delete(session=session)
    return loaded


def test_upload_whose_session_is_deleted_while_its_body_arrives_is_404_and_leaves_no_file(
    recording,
):
    body = BodyDuringWhichTheSessionIsDeleted(screen_like(CHUNK_SIZE), session=recording)

    with pytest.raises(NotFound):
        chunk_ingest(session=recording, sequence=0, body=body, content_length=None)

    assert not Session.objects.filter(pk=recording.pk).exists()
    assert files_of_session(recording.pk) == []


def test_first_upload_into_a_session_deleted_meanwhile_is_404_and_leaves_no_file(recording):
    session = _deleted_meanwhile(recording)

    with pytest.raises(NotFound):
        chunk_ingest(session=session, sequence=0, body=io.BytesIO(b"chunk"), content_length=5)

    assert files_of_session(recording.pk) == []


def test_stream_append_to_a_session_deleted_meanwhile_is_404_and_leaves_no_file(recording):
    session_stream_append(
        session_id=recording.pk, body=io.BytesIO(b"first bytes"), content_length=11
    )
    session = _deleted_meanwhile(recording)

    with pytest.raises(NotFound):
        session_stream_append(session_id=session.pk, body=io.BytesIO(b"more"), content_length=4)

    assert files_of_session(recording.pk) == []


def test_stop_of_a_session_deleted_meanwhile_is_404_and_leaves_no_file(recording):
    session = _deleted_meanwhile(recording)

    with pytest.raises(NotFound):
        session_stop(session=session)

    assert files_of_session(recording.pk) == []


def test_spool_files_go_even_when_the_chunk_store_cannot_remove_the_session_s(
    recording, chunk_store_faults
):
    spool = get_spool()
    spool.put(f"{recording.pk}/chunk.raw", b"raw bytes")
    refused = ChunkStoreError(f"Could not delete {recording.pk}/: Permission denied.")
    chunk_store_faults.fail("delete_prefix", refused, under=f"{recording.pk}/")

    with pytest.raises(ChunkStoreError, match="Permission denied"):
        session_files_delete(session_id=recording.pk)

    assert remains(spool) == []
