"""How ingest bodies arrive: lengths, chunked transfer coding, bodies cut short, bodies refused.

Requests are built as a WSGI server hands them over: a chunked body is given already de-chunked
on `wsgi.input`, marked `wsgi.input_terminated`, without CONTENT_LENGTH (as gunicorn does).
"""

import io

import pytest
from rest_framework.test import APIClient

from chunks_app.models import Chunk
from chunks_app.storage import get_chunk_store, get_spool
from core.http.bodies import CLOSE_CONNECTION, DRAIN_LIMIT
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    download,
    post_stream,
    random_bytes,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.support.faults import remains

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN_SESSION = Session(id="00000000-0000-0000-0000-000000000000")


class BrokenOff(io.BytesIO):
    """A server's input whose client went away before the body's end (its last chunk)."""

    def read(self, size: int = -1) -> bytes:
        piece = super().read(size)
        if not piece:
            raise ConnectionResetError("the client went away")
        return piece


def _send(client, method: str, path: str, body: io.BytesIO, *, length=None, chunked=False):
    """A request whose body is `body` as the server reads it, with the given framing."""
    environ = {"wsgi.input": body, "CONTENT_TYPE": "application/octet-stream"}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    if chunked:
        environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    return client.generic(method, path, b"", **environ)


def _put(client, session: Session, sequence: int, body: io.BytesIO, **framing):
    path = f"/api/v1/sessions/{session.id}/chunks/{sequence}"
    return _send(client, "PUT", path, body, **framing)


def _append(client, session: Session, body: io.BytesIO, **framing):
    return _send(client, "POST", f"/api/v1/sessions/{session.id}/stream", body, **framing)


def _recording_bytes(client, session: Session) -> bytes:
    assert client.post(f"/api/v1/sessions/{session.id}/stop").status_code == 200
    return body_of(client.get(f"/api/v1/sessions/{session.id}/recording"))


def _error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def _closes_connection(response) -> bool:
    return bool(response.wsgi_request.META.get(CLOSE_CONNECTION))


def test_put_without_content_length_or_chunked_coding_is_411(api_client, recording):
    response = _put(api_client, recording, 0, io.BytesIO(b"data"))

    _error(response, 411, "length_required")
    assert not Chunk.objects.exists()


def test_put_of_content_length_zero_is_an_empty_chunk(api_client, recording):
    _error(_put(api_client, recording, 0, io.BytesIO(), length=0), 400, "empty_chunk")


def test_chunked_put_lands_the_chunk(api_client, recording):
    data = random_bytes(CHUNK_SIZE)

    response = _put(api_client, recording, 0, io.BytesIO(data), chunked=True)

    assert response.status_code == 201
    assert response.json()["size"] == CHUNK_SIZE
    wait_until_settled(recording)
    assert body_of(download(api_client, recording, 0)) == data


@pytest.mark.parametrize("limit_kb", [CHUNK_SIZE // 1024, CHUNK_SIZE // 1024 - 1])
def test_a_chunked_put_is_stored_on_receipt_only_if_any_chunk_of_its_session_may_be(
    api_client, recording, settings, limit_kb
):
    settings.LUCID_STORE_ON_RECEIPT_MAX_KB = limit_kb

    response = _put(api_client, recording, 0, io.BytesIO(random_bytes(100)), chunked=True)

    on_receipt = limit_kb * 1024 >= CHUNK_SIZE
    assert response.json()["status"] == ("stored" if on_receipt else "received")


def test_chunked_put_over_the_chunk_size_is_413_and_stores_nothing(api_client, recording):
    response = _put(api_client, recording, 0, io.BytesIO(bytes(CHUNK_SIZE + 1)), chunked=True)

    _error(response, 413, "payload_too_large")
    assert not Chunk.objects.exists()


def test_empty_chunked_put_is_an_empty_chunk(api_client, recording):
    _error(_put(api_client, recording, 0, io.BytesIO(), chunked=True), 400, "empty_chunk")
    assert not Chunk.objects.exists()


def test_chunked_body_the_server_does_not_undo_is_411(api_client, recording):
    response = api_client.generic(
        "POST",
        f"/api/v1/sessions/{recording.id}/stream",
        b"",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(b"4\r\ndata\r\n0\r\n\r\n")},
    )

    _error(response, 411, "length_required")
    assert _closes_connection(response)


def test_chunked_appends_land_their_bytes(api_client, recording):
    data = random_bytes(2 * CHUNK_SIZE + 999)

    first = _append(api_client, recording, io.BytesIO(data[:1000]), chunked=True)
    second = _append(api_client, recording, io.BytesIO(data[1000:]), chunked=True)

    assert first.json() == {"received": 1000, "offset": 1000, "chunks": []}
    assert second.json() == {"received": len(data) - 1000, "offset": len(data), "chunks": [0, 1]}
    assert _recording_bytes(api_client, recording) == data


def test_append_without_length_or_chunked_coding_is_empty(api_client, recording):
    response = _append(api_client, recording, io.BytesIO(b"not announced"))

    assert response.json() == {"received": 0, "offset": 0, "chunks": []}


def test_chunked_append_broken_off_before_its_last_chunk_adds_nothing(api_client, recording):
    before, after = random_bytes(1000), random_bytes(CHUNK_SIZE)
    post_stream(api_client, recording, before)

    broken = _append(api_client, recording, BrokenOff(random_bytes(CHUNK_SIZE + 5)), chunked=True)

    _error(broken, 400, "incomplete_body")
    assert _closes_connection(broken)
    assert post_stream(api_client, recording, after).json()["offset"] == len(before + after)
    assert _recording_bytes(api_client, recording) == before + after


def test_append_shorter_than_its_content_length_adds_nothing(api_client, recording):
    body = io.BytesIO(random_bytes(CHUNK_SIZE))

    _error(_append(api_client, recording, body, length=2 * CHUNK_SIZE), 400, "incomplete_body")
    recording.refresh_from_db()
    assert (recording.stream_offset, recording.chunk_count) == (0, 0)
    assert not Chunk.objects.exists()


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_upload_cut_short_stores_nothing(api_client, recording, chunked):
    body = BrokenOff(b"x" * 500) if chunked else io.BytesIO(b"x" * 500)
    framing = {"chunked": True} if chunked else {"length": 1000}

    _error(_put(api_client, recording, 0, body, **framing), 400, "incomplete_body")
    assert not Chunk.objects.exists()
    assert (remains(get_spool()), remains(get_chunk_store())) == ([], [])


@pytest.fixture
def refusals(user, recording):
    """Requests refused before their body is read: name -> (client, path, status)."""
    anonymous = APIClient()
    signed_in = APIClient()
    signed_in.force_authenticate(user)
    created = SessionFactory(owner=user, status="created", chunk_size=CHUNK_SIZE)
    chunk_of = "/api/v1/sessions/{}/chunks/0".format
    return {
        "413": (signed_in, chunk_of(recording.id), 413),
        "404 session": (signed_in, chunk_of(UNKNOWN_SESSION.id), 404),
        "404 route": (signed_in, f"/api/v1/sessions/{recording.id}/chunks/-1", 404),
        "409 not recording": (signed_in, chunk_of(created.id), 409),
        "401": (anonymous, chunk_of(recording.id), 401),
    }


@pytest.mark.parametrize("refusal", ["413", "404 session", "404 route", "409 not recording", "401"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_refused_body_is_read_away_and_the_connection_kept(refusals, refusal, chunked):
    client, path, status = refusals[refusal]
    data = random_bytes(200_000)
    body = io.BytesIO(data)
    framing = {"chunked": True} if chunked else {"length": len(data)}

    response = _send(client, "PUT", path, body, **framing)

    assert response.status_code == status
    assert body.tell() == len(data)
    assert not _closes_connection(response)


def test_a_refused_body_too_long_to_read_away_closes_the_connection(api_client, recording):
    body = io.BytesIO(bytes(CHUNK_SIZE))

    response = _put(api_client, recording, 0, body, length=DRAIN_LIMIT + CHUNK_SIZE)

    _error(response, 413, "payload_too_large")
    assert body.tell() == 0
    assert _closes_connection(response)


def test_a_refused_chunked_body_that_goes_on_too_long_closes_the_connection(api_client, user):
    created = SessionFactory(owner=user, status="created", chunk_size=CHUNK_SIZE)
    body = io.BytesIO(bytes(DRAIN_LIMIT + 4 * CHUNK_SIZE))

    response = _append(api_client, created, body, chunked=True)

    _error(response, 409, "session_not_recording")
    assert body.tell() == DRAIN_LIMIT + 1
    assert _closes_connection(response)
