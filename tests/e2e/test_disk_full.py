"""The embedded default on a full disk: 507 with Retry-After and nothing half-written, then
service again once space is freed, without a restart.

The database, the spool and the chunk store share one small tmpfs, as they share `var/` under
`make run`; mounting it needs root (or CAP_SYS_ADMIN), as in CI. A read may still be answered
while the disk is full (SQLite reads need no space once its shared-memory file exists); a write
never gets a 5xx other than 507.
"""

import errno
import http.client
import json
import os
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from core.sizes import MIB
from tests.support.client import API, PASSWORD, USERNAME, content_digest, login
from tests.support.disks import small_filesystem
from tests.support.ports import HOST
from tests.support.server import LucidServer, served

DISK_SIZE = "16m"
REQUEST_SECONDS = 10
# Migration, start, filling and the requests on either side take a few seconds.
TEST_SECONDS = 60
CHUNK = os.urandom(MIB)
# Enough for the database's writes of a few requests, not for CHUNK.
ROOM_FOR_THE_DATABASE = 256 * 1024


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 16 MiB tmpfs of this test's own, unmounted afterwards."""
    with small_filesystem(tmp_path / "disk", size=DISK_SIZE) as disk:
        yield disk


@pytest.fixture
def server(tmp_path, small_disk) -> Iterator[LucidServer]:
    """The service as `make run` runs it, its database, spool and chunks on `small_disk`."""
    with served(
        tmp_path,
        LUCID_STORAGE_PATH=str(small_disk / "sessions"),
        LUCID_CHUNK_STORE_PATH=str(small_disk / "chunks"),
        LUCID_HEALTH_MIN_FREE_MB="1",
    ) as lucid:
        yield lucid


@pytest.fixture
def token(server) -> str:
    return login(server.client()).token


def fill(disk: Path, *, leave: int = 0) -> Path:
    """A file that takes the space left on `disk` but `leave` bytes."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        for piece in (bytes(MIB), bytes(4096), b"\0"):
            try:
                while True:
                    os.write(descriptor, piece)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
        os.truncate(descriptor, os.fstat(descriptor).st_size - leave)
    finally:
        os.close(descriptor)
    return filler


def answer(
    server: LucidServer,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes | dict | str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, dict]:
    """Status, headers and JSON body (or {}) of one request, whatever its status."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif isinstance(body, bytes):
        headers.update({"Content-Type": "application/octet-stream"})
        headers["Content-Digest"] = content_digest(body)
    connection = http.client.HTTPConnection(HOST, server.port, timeout=REQUEST_SECONDS)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    is_json = response.headers.get_content_type() == "application/json"
    return response.status, response.headers, json.loads(content) if is_json else {}


def admin_login(
    server: LucidServer, *, csrf_token: str
) -> tuple[int, http.client.HTTPMessage, dict]:
    """Log in to the admin as a browser does: a Django view, outside the API."""
    form = {"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": csrf_token}
    return answer(
        server,
        "POST",
        "/admin/login/",
        body=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_token}",
        },
    )


def admin_csrf_token(server: LucidServer) -> str:
    _, headers, _ = answer(server, "GET", "/admin/login/")
    return SimpleCookie(headers["Set-Cookie"])["csrftoken"].value


def assert_insufficient_storage(status: int, headers, body: dict, request: str) -> None:
    assert (status, body.get("code")) == (507, "insufficient_storage"), (request, status, body)
    assert "free disk space" in body["message"].lower(), body
    assert int(headers["Retry-After"]) > 0, request


def assert_read_or_insufficient_storage(status: int, headers, body: dict, request: str) -> None:
    if status != 200:
        assert_insufficient_storage(status, headers, body, request)


def stored_files(disk: Path) -> list[str]:
    """Every file the service keeps under `disk` besides its database and cache."""
    return sorted(
        str(path.relative_to(disk))
        for tree in (disk / "sessions" / "spool", disk / "chunks")
        for path in tree.rglob("*")
        if path.is_file()
    )


def test_a_full_disk_answers_507_stores_nothing_and_recovers_once_space_is_freed(
    server, token, small_disk
):
    started = time.monotonic()
    sessions = f"{API}/sessions"
    created = answer(server, "POST", sessions, token=token, body={"name": "before"})[2]["id"]
    assert answer(server, "POST", f"{sessions}/{created}/start", token=token)[0] == 200
    chunk = f"{sessions}/{created}/chunks/0"
    csrf_token = admin_csrf_token(server)
    filler = fill(small_disk)

    full = answer(server, "POST", sessions, token=token, body={"name": "while full"})
    assert_insufficient_storage(*full, "create")
    assert_insufficient_storage(*answer(server, "PUT", chunk, token=token, body=CHUNK), "upload")
    assert_insufficient_storage(*admin_login(server, csrf_token=csrf_token), "admin login")
    listed = answer(server, "GET", sessions, token=token)
    assert_read_or_insufficient_storage(*listed, "list")
    assert_read_or_insufficient_storage(*answer(server, "GET", "/metrics"), "metrics")
    assert stored_files(small_disk) == []

    filler.unlink()
    assert answer(server, "PUT", chunk, token=token, body=CHUNK)[0] == 201
    assert answer(server, "POST", sessions, token=token, body={"name": "after"})[0] == 201
    assert admin_login(server, csrf_token=csrf_token)[0] == 302
    status, _, listed = answer(server, "GET", sessions, token=token)
    assert (status, [session["name"] for session in listed["results"]]) == (
        200,
        ["after", "before"],
    )
    assert time.monotonic() - started < TEST_SECONDS


def test_a_chunk_that_does_not_fit_answers_507_and_is_not_kept(server, token, small_disk):
    sessions = f"{API}/sessions"
    uploads, stream = (
        answer(server, "POST", sessions, token=token, body={"name": name})[2]["id"]
        for name in ("uploads", "stream")
    )
    for session in (uploads, stream):
        assert answer(server, "POST", f"{sessions}/{session}/start", token=token)[0] == 200
    chunk = f"{sessions}/{uploads}/chunks/0"
    appended = f"{sessions}/{stream}/stream"
    filler = fill(small_disk, leave=ROOM_FOR_THE_DATABASE)

    assert_insufficient_storage(*answer(server, "PUT", chunk, token=token, body=CHUNK), "upload")
    status, _, chunks = answer(server, "GET", f"{sessions}/{uploads}/chunks", token=token)
    assert (status, chunks["results"]) == (200, [])
    assert stored_files(small_disk) == []
    full = answer(server, "POST", appended, token=token, body=CHUNK)
    assert_insufficient_storage(*full, "stream append")

    filler.unlink()
    assert answer(server, "PUT", chunk, token=token, body=CHUNK)[0] == 201
    status, _, appended = answer(server, "POST", appended, token=token, body=CHUNK)
    assert (status, appended["offset"]) == (200, len(CHUNK))
