"""Speaking to a running service over HTTP: a token, sessions, uploads, waiting until stored."""

import base64
import hashlib
import http.client
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.support.ports import HOST

API = "/api/v1"
USERNAME = "e2e"
PASSWORD = "a long end-to-end password"
HTTP_TIMEOUT_SECONDS = 120
# How long a client retries `database_busy` (503 with Retry-After), as a recorder does: on
# MongoDB a process killed inside a transaction holds its documents for up to 60 s.
BUSY_PATIENCE_SECONDS = 90


class ServiceClient:
    """One port of the service; a 5xx fails the test with the servers' logs, except
    `database_busy`, which is retried after its Retry-After for BUSY_PATIENCE_SECONDS."""

    def __init__(self, port: int, *, token: str | None = None, logs: Callable[[], str] = str):
        self.port = port
        self.token = token
        self.logs = logs

    def request(
        self, method: str, path: str, *, body: bytes | dict | None = None, headers=None
    ) -> tuple[int, bytes]:
        deadline = time.monotonic() + BUSY_PATIENCE_SECONDS
        while True:
            status, content, retry_after = self._send(method, path, body=body, headers=headers)
            if status != 503 or retry_after is None or time.monotonic() > deadline:
                break
            if json.loads(content).get("code") != "database_busy":
                break
            time.sleep(retry_after)
        assert status < 500, (
            f"{method} :{self.port}{path} -> {status} {content[:2000]!r}\n{self.logs()}"
        )
        return status, content

    def _send(
        self, method: str, path: str, *, body: bytes | dict | None, headers
    ) -> tuple[int, bytes, int | None]:
        headers = dict(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif body is not None:
            headers.setdefault("Content-Type", "application/octet-stream")
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection = http.client.HTTPConnection(HOST, self.port, timeout=HTTP_TIMEOUT_SECONDS)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            status, content = response.status, response.read()
            retry_after = response.getheader("Retry-After")
        finally:
            connection.close()
        return status, content, None if retry_after is None else int(retry_after)

    def call(self, method: str, path: str, expected: int = 200, **kwargs) -> dict:
        """The JSON answer of a call that must answer `expected`."""
        status, content = self.request(method, path, **kwargs)
        assert status == expected, f"{method} :{self.port}{path} -> {status} {content[:2000]!r}"
        return json.loads(content) if content else {}

    @contextmanager
    def streamed(self, path: str) -> Iterator[http.client.HTTPResponse]:
        """The response to a GET, its body left on the connection, open until the block ends."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        connection = http.client.HTTPConnection(HOST, self.port, timeout=HTTP_TIMEOUT_SECONDS)
        try:
            connection.request("GET", path, headers=headers)
            yield connection.getresponse()
        finally:
            connection.close()

    def fetch(self, path: str) -> bytes:
        """The body of a GET that must answer 200."""
        status, content = self.request("GET", path)
        assert status == 200, f"GET :{self.port}{path} -> {status} {content[:2000]!r}"
        return content


def content_digest(body: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def login(client: ServiceClient) -> ServiceClient:
    """A client of the same port holding a JWT of the superuser the harness creates."""
    credentials = {"username": USERNAME, "password": PASSWORD}
    token = client.call("POST", f"{API}/auth/token", body=credentials)["access"]
    return ServiceClient(client.port, token=token, logs=client.logs)


def session_start(client: ServiceClient, **fields) -> str:
    """The id of a new session created with `fields` and started, so recording."""
    session_id = client.call("POST", f"{API}/sessions", 201, body=fields)["id"]
    client.call("POST", f"{API}/sessions/{session_id}/start")
    return session_id


def put_chunk(client: ServiceClient, session_id: str, sequence: int, data: bytes) -> None:
    """Upload chunk `sequence` with its Content-Digest; it must be acknowledged as sent."""
    chunk = client.call(
        "PUT",
        f"{API}/sessions/{session_id}/chunks/{sequence}",
        201,
        body=data,
        headers={"Content-Digest": content_digest(data)},
    )
    assert (chunk["sequence"], chunk["size"]) == (sequence, len(data))


def append(client: ServiceClient, session_id: str, data: bytes) -> dict:
    """The answer to appending `data` to the session's stream."""
    return client.call("POST", f"{API}/sessions/{session_id}/stream", body=data)


def wait_until_stored(
    client: ServiceClient, session_id: str, count: int, *, seconds: float
) -> None:
    """Until the session's pipeline reports `count` chunks stored; none may fail meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        pipeline = client.call("GET", f"{API}/sessions/{session_id}/pipeline")
        if pipeline["stored"] >= count:
            return
        assert pipeline["failed"] == 0, f"chunks failed: {pipeline}"
        assert time.monotonic() < deadline, f"not {count} chunks stored: {pipeline}"
        time.sleep(0.1)
