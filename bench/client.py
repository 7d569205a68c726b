"""HTTP to the service's API: one keep-alive connection per client, JSON calls and tokens."""

from __future__ import annotations

import http.client
import json
from typing import Any, NamedTuple, Self

from bench.errors import BenchmarkError
from bench.service import HOST, Credentials

API = "/api/v1"
HTTP_TIMEOUT_SECONDS = 120


class UnexpectedResponse(BenchmarkError):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        if status == 404 and not is_json(body):
            message = (
                f"{method} {path} answered 404, not from the API: the service has no such route."
                " The chunk ingest API (chunk PUT, pipeline, download) may not exist in this build."
            )
        else:
            message = f"{method} {path} answered {status}: {body[:500].decode(errors='replace')}"
        super().__init__(message)


def is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


class ApiClient:
    """One keep-alive HTTP connection to the service, with a JWT once `token` is given.

    As a context manager, it closes its connection on exit.
    """

    def __init__(self, port: int, token: str | None = None) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT_SECONDS)
        self.token = token

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exception: object) -> None:
        self.connection.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        """Send a request and return its response unread; the caller reads it whole.

        A keep-alive connection the server has closed meanwhile is reopened once.
        """
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            return self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.connection.close()
            self.connection.request(method, path, body=body, headers=headers)
            return self.connection.getresponse()

    def call(self, method: str, path: str, payload: Any = None, *, expected: int = 200) -> Any:
        """Send `payload` as JSON and return the decoded answer, which must have `expected`."""
        body = None if payload is None else json.dumps(payload).encode()
        response = self.send(method, path, body=body, headers={"Content-Type": "application/json"})
        answer = response.read()
        if response.status != expected:
            raise UnexpectedResponse(method, path, response.status, answer)
        return json.loads(answer)


class Tokens(NamedTuple):
    access: str
    refresh: str


def obtain_tokens(port: int, credentials: Credentials) -> Tokens:
    """A JWT pair; the token endpoint is throttled, so a run asks for one and refreshes it."""
    with ApiClient(port) as client:
        answer = client.call(
            "POST",
            f"{API}/auth/token",
            {"username": credentials.username, "password": credentials.password},
        )
    return Tokens(answer["access"], answer["refresh"])


def refreshed_access_token(port: int, refresh_token: str) -> str:
    """A new access token: they expire within a long run."""
    with ApiClient(port) as client:
        answer = client.call("POST", f"{API}/auth/token/refresh", {"refresh": refresh_token})
    return answer["access"]
