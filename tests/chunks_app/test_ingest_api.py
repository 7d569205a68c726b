"""Uploading chunks with PUT: durability, digests, limits, idempotency, conflicts, parallelism."""

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from chunks_app.models import Chunk
from chunks_app.storage import get_spool
from core.counters import counters_read
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    download,
    post_stream,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.support.client import content_digest
from tests.support.faults import remains

pytestmark = pytest.mark.django_db(transaction=True)


def _spooled() -> list[str]:
    """Whatever the spool holds, hidden files and unfinished uploads too."""
    return remains(get_spool())


@pytest.mark.parametrize("algorithm", ["zstd", "lz4", "gzip", "none"])
@pytest.mark.parametrize("make_body", [screen_like, random_bytes], ids=["screen", "random"])
def test_uploaded_chunk_downloads_byte_for_byte(api_client, user, algorithm, make_body):
    level = {"zstd": 3, "lz4": 0, "gzip": 6, "none": 0}[algorithm]
    session = SessionFactory(
        owner=user,
        status="recording",
        chunk_size=CHUNK_SIZE,
        compression_algorithm=algorithm,
        compression_level=level,
    )
    body = make_body(CHUNK_SIZE - 123)

    response = put_chunk(api_client, session, 0, body)

    assert response.status_code == 201
    (chunk,) = wait_until_settled(session)
    assert chunk.status == "stored"
    assert body_of(download(api_client, session, 0)) == body


def test_compressible_chunk_is_stored_with_the_session_codec(api_client, recording):
    body = screen_like(CHUNK_SIZE)

    put_chunk(api_client, recording, 0, body)

    (chunk,) = wait_until_settled(recording)
    assert chunk.algorithm == "zstd"
    assert chunk.compressed_size < len(body) / 10
    detail = api_client.get(f"/api/v1/sessions/{recording.id}/chunks/0").json()
    assert detail["algorithm"] == "zstd"
    assert detail["compression_ratio"] == pytest.approx(chunk.compressed_size / len(body))
    assert detail["sha256"] == hashlib.sha256(body).hexdigest()
    assert detail["status"] == "stored" and detail["stored_at"] is not None


def test_chunk_that_does_not_shrink_is_stored_as_none(api_client, recording):
    body = random_bytes(CHUNK_SIZE)

    put_chunk(api_client, recording, 0, body)

    (chunk,) = wait_until_settled(recording)
    assert chunk.algorithm == "none"
    assert chunk.compressed_size == len(body)


def test_upload_response_describes_the_chunk(api_client, recording):
    body = screen_like(1000)

    response = put_chunk(api_client, recording, 7, body)

    body_json = response.json()
    assert body_json["sequence"] == 7
    assert body_json["size"] == 1000
    assert body_json["sha256"] == hashlib.sha256(body).hexdigest()
    on_receipt = len(body) <= settings.LUCID_STORE_ON_RECEIPT_MAX_KB * 1024
    assert body_json["status"] == ("stored" if on_receipt else "received")


def test_session_totals_follow_uploads(api_client, recording):
    put_chunk(api_client, recording, 0, screen_like(1000))
    put_chunk(api_client, recording, 1, screen_like(500))
    chunks = wait_until_settled(recording)

    session = api_client.get(f"/api/v1/sessions/{recording.id}").json()

    assert session["chunk_count"] == 2
    assert session["size"] == 1500
    assert session["compressed_size"] == sum(c.compressed_size for c in chunks)
    assert session["compression_ratio"] == pytest.approx(session["compressed_size"] / 1500)


def test_matching_content_digest_is_accepted(api_client, recording):
    body = screen_like(5000)

    response = put_chunk(api_client, recording, 0, body, content_digest=content_digest(body))

    assert response.status_code == 201


def test_digest_mismatch_is_400_and_stores_nothing(api_client, recording):
    body = screen_like(5000)

    response = put_chunk(
        api_client, recording, 0, body, content_digest=content_digest(b"other bytes")
    )

    assert response.status_code == 400
    assert response.json()["code"] == "digest_mismatch"
    assert not Chunk.objects.exists()
    assert _spooled() == []
    recording.refresh_from_db()
    assert (recording.chunk_count, recording.size) == (0, 0)


@pytest.mark.parametrize(
    "header", ["md5=:abc:", "sha-256=abc", "sha-256=:!!!:", "sha-256=:YWJj:", "garbage"]
)
def test_malformed_content_digest_is_400(api_client, recording, header):
    response = put_chunk(api_client, recording, 0, b"data", content_digest=header)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_digest"
    assert not Chunk.objects.exists()


def test_body_larger_than_chunk_size_is_413_and_stores_nothing(api_client, recording):
    response = put_chunk(api_client, recording, 0, random_bytes(CHUNK_SIZE + 1))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not Chunk.objects.exists()
    assert _spooled() == []


def test_body_of_exactly_chunk_size_is_accepted(api_client, recording):
    assert put_chunk(api_client, recording, 0, random_bytes(CHUNK_SIZE)).status_code == 201


def test_empty_chunk_is_400(api_client, recording):
    response = api_client.generic(
        "PUT",
        f"/api/v1/sessions/{recording.id}/chunks/0",
        b"",
        content_type="application/octet-stream",
        CONTENT_LENGTH="0",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "empty_chunk"


def test_same_bytes_again_is_an_idempotent_200(api_client, recording):
    body = screen_like(3000)
    first = put_chunk(api_client, recording, 0, body)

    again = put_chunk(api_client, recording, 0, body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["sha256"] == first.json()["sha256"]
    assert Chunk.objects.count() == 1
    recording.refresh_from_db()
    assert (recording.chunk_count, recording.size) == (1, 3000)


def test_different_bytes_under_an_existing_sequence_is_409(api_client, recording):
    body = screen_like(3000)
    put_chunk(api_client, recording, 0, body)
    wait_until_settled(recording)

    response = put_chunk(api_client, recording, 0, screen_like(3000, seed=1))

    assert response.status_code == 409
    assert response.json()["code"] == "chunk_conflict"
    assert body_of(download(api_client, recording, 0)) == body


@pytest.mark.parametrize("status", ["created", "paused", "stopped", "failed"])
def test_upload_outside_recording_is_409(api_client, user, status):
    session = SessionFactory(owner=user, status=status, chunk_size=CHUNK_SIZE)

    response = put_chunk(api_client, session, 0, b"data")

    assert response.status_code == 409
    assert response.json()["code"] == "session_not_recording"
    assert response.json()["status"] == status
    assert not Chunk.objects.exists()


def test_upload_to_unknown_session_is_404(api_client):
    session = Session(id="00000000-0000-0000-0000-000000000000")

    assert put_chunk(api_client, session, 0, b"data").status_code == 404


def test_sequence_beyond_the_limit_is_400(api_client, recording):
    response = put_chunk(api_client, recording, 2**31, b"data")

    assert response.status_code == 400
    assert "sequence" in response.json()["fields"]


def test_chunked_upload_without_content_length_is_411(api_client, recording):
    response = api_client.generic(
        "PUT",
        f"/api/v1/sessions/{recording.id}/chunks/0",
        b"",
        content_type="application/octet-stream",
        HTTP_TRANSFER_ENCODING="chunked",
    )

    assert response.status_code == 411
    assert response.json()["code"] == "length_required"


def test_stream_after_uploads_is_409(api_client, recording):
    put_chunk(api_client, recording, 0, b"data")

    response = post_stream(api_client, recording, b"more")

    assert response.status_code == 409
    assert response.json()["code"] == "ingest_mode_conflict"


def test_upload_after_stream_is_409(api_client, recording):
    post_stream(api_client, recording, b"data")

    response = put_chunk(api_client, recording, 0, b"more")

    assert response.status_code == 409
    assert response.json()["code"] == "ingest_mode_conflict"


def test_parallel_out_of_order_uploads_all_land(user, recording):
    bodies = {sequence: screen_like(CHUNK_SIZE - sequence, seed=sequence) for sequence in range(12)}
    order = [11, 3, 7, 0, 9, 1, 5, 10, 2, 8, 4, 6]

    def upload(sequence: int) -> int:
        client = APIClient()
        client.force_authenticate(user)
        try:
            return put_chunk(client, recording, sequence, bodies[sequence]).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(upload, order))

    assert statuses == [201] * 12
    chunks = wait_until_settled(recording)
    assert [c.sequence for c in chunks] == list(range(12))
    assert all(c.status == "stored" for c in chunks)
    recording.refresh_from_db()
    assert recording.chunk_count == 12
    assert recording.size == sum(len(b) for b in bodies.values())
    assert_totals_equal_a_recount(recording)
    client = APIClient()
    client.force_authenticate(user)
    recording_bytes = body_of(client.get(f"/api/v1/sessions/{recording.id}/recording"))
    assert recording_bytes == b"".join(bodies[s] for s in range(12))


def assert_totals_equal_a_recount(session: Session) -> None:
    """The session's and the system's running totals against a count of the chunk rows."""
    chunks = list(Chunk.objects.all())
    mine = [chunk for chunk in chunks if chunk.session_id == session.pk]
    session.refresh_from_db()
    assert (session.chunk_count, session.size, session.compressed_size) == (
        len(mine),
        sum(chunk.size for chunk in mine),
        sum(chunk.compressed_size or 0 for chunk in mine),
    )
    assert session.chunks_stored == sum(chunk.status == "stored" for chunk in mine)
    totals = counters_read()
    assert totals.get("chunks.stored", 0) == sum(chunk.status == "stored" for chunk in chunks)
    assert totals.get("chunks.raw_bytes", 0) == sum(chunk.size for chunk in chunks)
    assert totals.get("chunks.stored_bytes", 0) == sum(c.compressed_size or 0 for c in chunks)
    assert totals.get("chunks.backlog_bytes", 0) == 0


def test_parallel_retries_of_one_chunk_store_it_once(user, recording):
    body = screen_like(CHUNK_SIZE)

    def upload(_: int) -> int:
        client = APIClient()
        client.force_authenticate(user)
        try:
            return put_chunk(client, recording, 0, body).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(upload, range(6)))

    assert statuses == [200] * 5 + [201]
    recording.refresh_from_db()
    assert (recording.chunk_count, recording.size) == (1, CHUNK_SIZE)
