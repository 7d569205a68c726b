"""Recorders on pooled keep-alive connections: refused bodies, chunked streams, cut-off bodies.

Black-box tests of gunicorn serving the service: one `http.client.HTTPConnection` carries
request after request, as a recorder's connection pool does.
"""

import http.client
import json
import random
import socket

import pytest

from tests.support.client import API, HTTP_TIMEOUT_SECONDS, ServiceClient, login, session_start
from tests.support.ports import HOST
from tests.support.server import LucidServer, served

CHUNK_SIZE = 64 * 1024
KB = 1000
MB = 1000 * KB
# More than the server reads away of a refused body (core.http.bodies.DRAIN_LIMIT).
UNDRAINABLE_LENGTH = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One service for the module: every test records into a session of its own."""
    with served(tmp_path_factory.mktemp("keepalive")) as lucid:
        yield lucid


@pytest.fixture(scope="module")
def recorder(server) -> ServiceClient:
    """One login for the module: the login throttle allows ten a minute across workers."""
    return login(server.client())


@pytest.fixture(scope="module")
def token(recorder) -> str:
    return recorder.token


@pytest.fixture
def connection(server):
    pooled = http.client.HTTPConnection(HOST, server.port, timeout=HTTP_TIMEOUT_SECONDS)
    yield pooled
    pooled.close()


def _call(connection, token: str, method: str, path: str, body=None, headers=None):
    """Status, headers and JSON body of one request on the (reused) connection."""
    headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    if body is not None:
        headers.setdefault("Content-Type", "application/octet-stream")
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    content = response.read()
    return response.status, response.headers, json.loads(content) if content else None


def _local_port(connection) -> int:
    return connection.sock.getsockname()[1]


@pytest.fixture
def session_id(recorder) -> str:
    return session_start(recorder, name="keep-alive", chunk_size=CHUNK_SIZE)


def _download(connection, token: str, path: str) -> bytes:
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    assert response.status == 200
    return response.read()


def _stopped_recording(connection, token: str, session_id: str) -> bytes:
    """The session's recording once stopped."""
    assert _call(connection, token, "POST", f"{API}/sessions/{session_id}/stop")[0] == 200
    return _download(connection, token, f"{API}/sessions/{session_id}/recording")


def _pieces(data: bytes, size: int):
    """`data` as an iterable of pieces, which http.client sends with chunked transfer coding."""
    return (data[start : start + size] for start in range(0, len(data), size))


@pytest.mark.parametrize("size", [70 * KB, 200 * KB, 5 * MB], ids=["70KB", "200KB", "5MB"])
def test_after_a_413_the_same_connection_carries_the_next_upload(
    token, connection, session_id, size
):
    chunks = f"{API}/sessions/{session_id}/chunks"
    status, _, _ = _call(connection, token, "GET", f"{API}/sessions/{session_id}")
    assert status == 200
    port = _local_port(connection)

    status, headers, error = _call(connection, token, "PUT", f"{chunks}/0", bytes(size))

    assert (status, error["code"]) == (413, "payload_too_large")
    assert headers["Connection"] == "keep-alive"
    status, _, chunk = _call(connection, token, "PUT", f"{chunks}/0", b"fits")
    assert (status, chunk["size"]) == (201, 4)
    assert _local_port(connection) == port, "the server closed the kept-alive connection"


@pytest.mark.parametrize(
    ("method", "path", "credentials", "refusal"),
    [
        ("PUT", "/sessions/{unknown}/chunks/0", "valid", (404, "not_found")),
        ("POST", "/sessions/{unknown}/stream", "valid", (404, "not_found")),
        ("PUT", "/sessions/{session}/chunks/-1", "valid", (404, "not_found")),
        ("POST", "/sessions/{session}/stop/nothing-here", "valid", (404, "not_found")),
        ("PUT", "/sessions/{session}/chunks/0", "forged", (401, "token_not_valid")),
    ],
)
def test_after_an_early_error_the_same_connection_carries_the_next_request(
    token, connection, session_id, method, path, credentials, refusal
):
    _call(connection, token, "GET", f"{API}/sessions/{session_id}")
    port = _local_port(connection)
    path = API + path.format(session=session_id, unknown="00000000-0000-0000-0000-000000000000")

    status, _, error = _call(
        connection, token if credentials == "valid" else "forged", method, path, bytes(300 * KB)
    )

    assert (status, error["code"]) == refusal
    status, _, _ = _call(connection, token, "GET", f"{API}/sessions/{session_id}")
    assert status == 200
    assert _local_port(connection) == port


def test_a_refused_body_too_long_to_read_away_closes_the_connection(server, token, session_id):
    head = (
        f"PUT {API}/sessions/{session_id}/chunks/0 HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {UNDRAINABLE_LENGTH}\r\n\r\n"
    )
    with socket.create_connection((HOST, server.port), timeout=HTTP_TIMEOUT_SECONDS) as raw:
        raw.sendall(head.encode() + bytes(CHUNK_SIZE))
        response = http.client.HTTPResponse(raw)
        response.begin()
        error = json.loads(response.read())

        assert (response.status, error["code"]) == (413, "payload_too_large")
        assert response.headers["Connection"] == "close"


def test_a_chunked_stream_append_lands_its_bytes(token, connection, session_id):
    stream = f"{API}/sessions/{session_id}/stream"
    data = random.Random(7).randbytes(3 * CHUNK_SIZE + 12_345)

    first = _call(connection, token, "POST", stream, _pieces(data[:100_000], 4096))
    second = _call(connection, token, "POST", stream, _pieces(data[100_000:], 50_000))

    assert first[:1] == second[:1] == (200,)
    assert first[2] == {"received": 100_000, "offset": 100_000, "chunks": [0]}
    assert second[2] == {"received": len(data) - 100_000, "offset": len(data), "chunks": [1, 2]}
    assert _stopped_recording(connection, token, session_id) == data


def test_a_chunked_upload_lands_and_one_over_chunk_size_is_413(token, connection, session_id):
    chunks = f"{API}/sessions/{session_id}/chunks"
    data = random.Random(8).randbytes(CHUNK_SIZE)

    status, _, chunk = _call(connection, token, "PUT", f"{chunks}/0", _pieces(data, 10_000))
    too_large = _call(connection, token, "PUT", f"{chunks}/1", _pieces(data + b"!", 10_000))

    assert (status, chunk["size"]) == (201, CHUNK_SIZE)
    assert (too_large[0], too_large[2]["code"]) == (413, "payload_too_large")
    assert _download(connection, token, f"{chunks}/0/download") == data


def _send_cut_off_chunked(server: LucidServer, token: str, path: str, method: str) -> bytes:
    """Send two chunks of a chunked body but not its last chunk, then end the connection's
    sending side; what the server answered (possibly nothing)."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    body = b"4000\r\n" + b"x" * 0x4000 + b"\r\n" + b"10\r\n" + b"y" * 0x10 + b"\r\n"
    with socket.create_connection((HOST, server.port), timeout=HTTP_TIMEOUT_SECONDS) as raw:
        raw.sendall(head.encode() + body)
        raw.shutdown(socket.SHUT_WR)
        answer = b""
        while piece := raw.recv(65536):
            answer += piece
    return answer


def test_a_chunked_append_cut_off_before_its_last_chunk_stores_nothing(
    server, token, connection, session_id
):
    stream = f"{API}/sessions/{session_id}/stream"
    before, after = b"a" * 1000, b"b" * 2000
    assert _call(connection, token, "POST", stream, _pieces(before, 300))[0] == 200

    answer = _send_cut_off_chunked(server, token, stream, "POST")

    assert answer.startswith(b"HTTP/1.1 400"), answer[:500]
    assert b'"incomplete_body"' in answer
    status, _, result = _call(connection, token, "POST", stream, _pieces(after, 700))
    assert (status, result["offset"]) == (200, len(before) + len(after))
    assert _stopped_recording(connection, token, session_id) == before + after


def test_a_chunked_upload_cut_off_before_its_last_chunk_stores_nothing(
    server, token, connection, session_id
):
    answer = _send_cut_off_chunked(server, token, f"{API}/sessions/{session_id}/chunks/0", "PUT")

    assert answer.startswith(b"HTTP/1.1 400"), answer[:500]
    status, _, page = _call(connection, token, "GET", f"{API}/sessions/{session_id}/chunks")
    assert (status, page["results"]) == (200, [])
