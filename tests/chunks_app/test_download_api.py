"""Downloading chunks and whole recordings: ranges, conditions, passthrough, the manifest."""

import hashlib

import pytest
import zstandard

from chunks_app.models import Chunk
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

pytestmark = pytest.mark.django_db(transaction=True)


def independent_merkle_root(hex_digests: list[str]) -> str:
    """The contract's definition, written recursively and apart from the service's code."""

    def root(nodes: list[bytes]) -> bytes:
        if len(nodes) == 1:
            return nodes[0]
        padded = nodes + nodes[-1:] if len(nodes) % 2 else nodes
        parents = [
            hashlib.sha256(a + b).digest() for a, b in zip(padded[::2], padded[1::2], strict=True)
        ]
        return root(parents)

    return root([bytes.fromhex(d) for d in hex_digests]).hex()


@pytest.fixture
def stored_chunk(api_client, recording):
    body = screen_like(50_000)
    put_chunk(api_client, recording, 0, body)
    wait_until_settled(recording)
    return body


def test_download_has_length_etag_and_disposition(api_client, recording, stored_chunk):
    response = download(api_client, recording, 0)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Length"] == str(len(stored_chunk))
    assert response["ETag"] == f'"{hashlib.sha256(stored_chunk).hexdigest()}"'
    assert response["Content-Disposition"].startswith("attachment")
    assert body_of(response) == stored_chunk


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=49000-", 49000, 49999), ("bytes=-10", 49990, 49999)],
)
def test_range_gives_206_with_those_bytes(api_client, recording, stored_chunk, header, start, end):
    response = download(api_client, recording, 0, range=header)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/50000"
    assert body_of(response) == stored_chunk[start : end + 1]


def test_unsatisfiable_range_is_416(api_client, recording, stored_chunk):
    response = download(api_client, recording, 0, range="bytes=50000-")

    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */50000"


def test_if_none_match_with_the_etag_is_304(api_client, recording, stored_chunk):
    etag = download(api_client, recording, 0)["ETag"]

    response = download(api_client, recording, 0, if_none_match=etag)

    assert response.status_code == 304


@pytest.mark.parametrize("algorithm", ["zstd", "gzip"])
def test_stored_bytes_pass_through_when_accept_encoding_allows(api_client, user, algorithm):
    session = SessionFactory(
        owner=user,
        status="recording",
        chunk_size=CHUNK_SIZE,
        compression_algorithm=algorithm,
        compression_level=3,
    )
    body = screen_like(60_000)
    put_chunk(api_client, session, 0, body)
    (chunk,) = wait_until_settled(session)

    response = download(api_client, session, 0, accept_encoding=f"br, {algorithm}")

    assert response.status_code == 200
    assert response["Content-Encoding"] == algorithm
    assert response["Content-Length"] == str(chunk.compressed_size)
    encoded = body_of(response)
    if algorithm == "zstd":
        assert zstandard.ZstdDecompressor().decompress(encoded) == body
    else:
        import gzip

        assert gzip.decompress(encoded) == body


def test_no_passthrough_when_the_client_does_not_accept_it(api_client, recording, stored_chunk):
    response = download(api_client, recording, 0, accept_encoding="gzip")

    assert not response.has_header("Content-Encoding")
    assert body_of(response) == stored_chunk


def test_chunk_not_yet_stored_downloads_from_the_spool(api_client, recording):
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/pause")
    body = random_bytes(10_000)
    put_chunk(api_client, recording, 0, body)

    response = download(api_client, recording, 0, range="bytes=10-19")

    assert Chunk.objects.get().status == "received"
    assert response.status_code == 206
    assert body_of(response) == body[10:20]


def test_unknown_chunk_is_404(api_client, recording):
    assert download(api_client, recording, 5).status_code == 404
    assert api_client.get(f"/api/v1/sessions/{recording.id}/chunks/5").status_code == 404
    assert download(api_client, recording, 99999999999999999).status_code == 404


def test_chunk_list_is_ordered_by_sequence_and_filters_by_status(api_client, recording):
    for sequence in [2, 0, 1]:
        put_chunk(api_client, recording, sequence, screen_like(100, seed=sequence))
    wait_until_settled(recording)

    listed = api_client.get(f"/api/v1/sessions/{recording.id}/chunks?page_size=2").json()
    rest = api_client.get(listed["next"]).json()
    failed = api_client.get(f"/api/v1/sessions/{recording.id}/chunks?status=failed").json()

    stored = api_client.get(f"/api/v1/sessions/{recording.id}/chunks?status=stored").json()
    unknown = api_client.get(f"/api/v1/sessions/{recording.id}/chunks?status=flying")

    assert [c["sequence"] for c in listed["results"] + rest["results"]] == [0, 1, 2]
    assert failed["results"] == []
    assert [c["sequence"] for c in stored["results"]] == [0, 1, 2]
    assert unknown.status_code == 400
    assert "status" in unknown.json()["fields"]


def test_recording_ranges_cross_chunk_borders(api_client, recording):
    data = screen_like(CHUNK_SIZE * 3 + 500)
    post_stream(api_client, recording, data)
    api_client.post(f"/api/v1/sessions/{recording.id}/stop")
    wait_until_settled(recording)
    url = f"/api/v1/sessions/{recording.id}/recording"
    start, end = CHUNK_SIZE - 100, 2 * CHUNK_SIZE + 100

    response = api_client.get(url, HTTP_RANGE=f"bytes={start}-{end}")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    assert body_of(response) == data[start : end + 1]
    assert body_of(api_client.get(url, HTTP_RANGE="bytes=-600")) == data[-600:]


def test_recording_etag_is_the_merkle_root_and_honours_if_none_match(api_client, recording):
    post_stream(api_client, recording, random_bytes(CHUNK_SIZE + 1))
    api_client.post(f"/api/v1/sessions/{recording.id}/stop")
    url = f"/api/v1/sessions/{recording.id}/recording"
    merkle_root = api_client.get(f"/api/v1/sessions/{recording.id}/manifest").json()["merkle_root"]

    response = api_client.get(url, HTTP_IF_NONE_MATCH=f'"{merkle_root}"')

    assert response.status_code == 304


def test_empty_recording_is_an_empty_200(api_client, recording):
    response = api_client.get(f"/api/v1/sessions/{recording.id}/recording")

    assert response.status_code == 200
    assert body_of(response) == b""


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_manifest_merkle_root_matches_an_independent_computation(api_client, recording, count):
    bodies = [random_bytes(1000 + i) for i in range(count)]
    for sequence, body in enumerate(bodies):
        put_chunk(api_client, recording, sequence, body)
    api_client.post(f"/api/v1/sessions/{recording.id}/stop")

    manifest = api_client.get(f"/api/v1/sessions/{recording.id}/manifest").json()

    digests = [hashlib.sha256(body).hexdigest() for body in bodies]
    assert manifest["session"] == str(recording.id)
    assert manifest["chunks"] == [
        {"sequence": i, "size": len(body), "sha256": digests[i]} for i, body in enumerate(bodies)
    ]
    assert manifest["merkle_root"] == independent_merkle_root(digests)
    recording.refresh_from_db()
    assert recording.merkle_root == manifest["merkle_root"]


def test_manifest_of_a_session_without_chunks_has_no_root(api_client, recording):
    manifest = api_client.get(f"/api/v1/sessions/{recording.id}/manifest").json()

    assert manifest == {
        "session": str(recording.id),
        "chunks": [],
        "merkle_root": None,
        "complete": False,
        "missing_sequences": [],
        "missing_count": 0,
    }


@pytest.mark.parametrize("header", [None, "bytes=10-19", "bytes=100-", "bytes=-10"])
def test_uncompressed_chunk_downloads_exactly_in_whole_and_in_ranges(api_client, recording, header):
    body = random_bytes(20_000)
    put_chunk(api_client, recording, 0, body)
    (chunk,) = wait_until_settled(recording)
    assert chunk.algorithm == "none"

    response = download(api_client, recording, 0, **({"range": header} if header else {}))

    expected = {None: body, "bytes=10-19": body[10:20], "bytes=100-": body[100:]}.get(
        header, body[-10:]
    )
    assert response["Content-Length"] == str(len(expected))
    assert body_of(response) == expected
