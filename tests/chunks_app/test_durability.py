"""A server killed with SIGKILL right after a 2xx loses no acknowledged chunk.

Black-box tests of the real service: gunicorn in its own process group on a fresh storage
directory, spoken to over HTTP only, killed with SIGKILL and started again on the same files.
"""

import base64
import hashlib
import http.client
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHUNK_SIZE = 256 * 1024
USERNAME = "durability"
PASSWORD = "a long durability password"
STARTUP_SECONDS = 60
DEATH_SECONDS = 10
PROCESSING_SECONDS = 20
UPLOAD_SIZES = [CHUNK_SIZE, 1, CHUNK_SIZE - 1, 65_537, CHUNK_SIZE, 3, 200_001, 12_345]
UPLOAD_ORDER = [3, 0, 7, 1, 6, 2, 5, 4]
STREAM_SIZES = [1, 100_003, CHUNK_SIZE - 100_004, CHUNK_SIZE + 1, 77_777, 5, 3 * CHUNK_SIZE + 9]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _live_members(pgid: int) -> list[int]:
    """Pids of the process group with a thread still running (zombies hold no sockets)."""
    members = []
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            states = [_stat_fields(task / "stat") for task in (process / "task").iterdir()]
        except OSError:
            continue
        if any(pgrp == pgid and state not in "ZX" for state, pgrp in states):
            members.append(int(process.name))
    return members


def _stat_fields(path: Path) -> tuple[str, int]:
    """The state and process group of a task, from /proc/…/stat."""
    try:
        stat = path.read_text()
    except OSError:
        return "X", 0
    state, _parent, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
    return state, int(pgrp)


class LucidServer:
    """The service run as `make run` runs it, on its own storage directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.log_path = root / "server.log"
        self.process: subprocess.Popen | None = None
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")
        }
        self.env.update(
            LUCID_STORAGE_PATH=str(root / "sessions"),
            LUCID_CHUNK_STORE_PATH=str(root / "chunks"),
            DJANGO_STATIC_ROOT=str(root / "static"),
            DJANGO_SETTINGS_MODULE="lucid.settings",
            DJANGO_SUPERUSER_USERNAME=USERNAME,
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
            PORT=str(self.port),
            GUNICORN_WORKERS="2",
            XDG_RUNTIME_DIR=str(root),
            PYTHONUNBUFFERED="1",
        )

    def migrate(self) -> None:
        for command in (["migrate", "--noinput"], ["ensure_superuser"]):
            self._manage(*command)

    def _manage(self, *arguments: str) -> None:
        with self.log_path.open("ab") as log:
            completed = subprocess.run(
                [str(VENV_BIN / "python"), "manage.py", *arguments],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=log,
                timeout=STARTUP_SECONDS,
            )
        assert completed.returncode == 0, f"manage.py {arguments} failed:\n{self.log()}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "lucid.wsgi", "--config", "lucid/gunicorn.conf.py"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.log()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"gunicorn did not answer on port {self.port}:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole gunicorn process group and wait until every member is gone."""
        if self.process is None:
            return
        master, self.process = self.process, None
        pgid = master.pid
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        master.wait(timeout=DEATH_SECONDS)
        deadline = time.monotonic() + DEATH_SECONDS
        while _live_members(pgid):
            assert time.monotonic() < deadline, f"process group {pgid} survived SIGKILL"
            time.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def server(tmp_path):
    lucid = LucidServer(tmp_path)
    lucid.migrate()
    lucid.start()
    yield lucid
    lucid.kill()
    print(f"--- server log ({lucid.log_path}) ---\n{lucid.log()}")


def _request(
    server: LucidServer,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes | dict | None = None,
    headers: dict | None = None,
) -> tuple[int, dict, bytes]:
    """One HTTP call; a 5xx fails the test with the server's log."""
    headers = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif body is not None:
        headers.setdefault("Content-Type", "application/octet-stream")
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        status, content = response.status, response.read()
        response_headers = {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()
    assert status < 500, (
        f"{method} {path} -> {status} {content[:2000]!r}\n--- server log ---\n{server.log()}"
    )
    return status, response_headers, content


def _call(server: LucidServer, method: str, path: str, expected: int, **kwargs) -> dict:
    status, _, content = _request(server, method, path, **kwargs)
    assert status == expected, f"{method} {path} -> {status} {content[:2000]!r}"
    return json.loads(content) if content else {}


def _token(server: LucidServer) -> str:
    credentials = {"username": USERNAME, "password": PASSWORD}
    return _call(server, "POST", "/api/v1/auth/token", 200, body=credentials)["access"]


def _recording_session(server: LucidServer, token: str, *, name: str, paused: bool) -> str:
    body = {"name": name, "chunk_size": CHUNK_SIZE}
    session_id = _call(server, "POST", "/api/v1/sessions", 201, token=token, body=body)["id"]
    _call(server, "POST", f"/api/v1/sessions/{session_id}/start", 200, token=token)
    if paused:
        _call(server, "POST", f"/api/v1/sessions/{session_id}/pipeline/pause", 200, token=token)
    return session_id


def _put_chunk(
    server: LucidServer, token: str, session_id: str, sequence: int, data: bytes
) -> None:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    chunk = _call(
        server,
        "PUT",
        f"/api/v1/sessions/{session_id}/chunks/{sequence}",
        201,
        token=token,
        body=data,
        headers={"Content-Digest": f"sha-256=:{digest}:"},
    )
    assert (chunk["sequence"], chunk["size"]) == (sequence, len(data))


def _assert_chunk_intact(
    server: LucidServer, token: str, session_id: str, sequence: int, data: bytes
) -> None:
    path = f"/api/v1/sessions/{session_id}/chunks/{sequence}"
    chunk = _call(server, "GET", path, 200, token=token)
    assert (chunk["size"], chunk["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    downloaded = _download(server, token, f"{path}/download")
    assert downloaded == data, f"chunk {sequence}: the download differs from the upload"


def _chunk_statuses(server: LucidServer, token: str, session_id: str) -> dict[int, str]:
    path = f"/api/v1/sessions/{session_id}/chunks?page_size=1000"
    page = _call(server, "GET", path, 200, token=token)
    return {chunk["sequence"]: chunk["status"] for chunk in page["results"]}


def _wait_until_stored(server: LucidServer, token: str, session_id: str, count: int) -> None:
    deadline = time.monotonic() + PROCESSING_SECONDS
    while True:
        pipeline = _call(server, "GET", f"/api/v1/sessions/{session_id}/pipeline", 200, token=token)
        if pipeline["stored"] == count:
            return
        assert pipeline["failed"] == 0, f"chunks failed: {pipeline}"
        assert time.monotonic() < deadline, f"not all {count} chunks stored: {pipeline}"
        time.sleep(0.1)


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _piece(recording: bytes, sequence: int) -> bytes:
    """The bytes of the stream's chunk `sequence`."""
    return recording[sequence * CHUNK_SIZE : (sequence + 1) * CHUNK_SIZE]


def _append(server: LucidServer, token: str, session_id: str, data: bytes) -> dict:
    path = f"/api/v1/sessions/{session_id}/stream"
    return _call(server, "POST", path, 200, token=token, body=data)


def _download(server: LucidServer, token: str, path: str) -> bytes:
    status, _, content = _request(server, "GET", path, token=token)
    assert status == 200, f"GET {path} -> {status} {content[:2000]!r}"
    return content


@pytest.mark.parametrize("paused", [True, False], ids=["pipeline-paused", "pipeline-running"])
def test_uploaded_chunks_acknowledged_before_sigkill_survive_a_restart(server, paused):
    token = _token(server)
    session_id = _recording_session(server, token, name="uploads", paused=paused)
    chunks = {seq: _random_bytes(size, seed=seq) for seq, size in enumerate(UPLOAD_SIZES)}
    for sequence in UPLOAD_ORDER:
        _put_chunk(server, token, session_id, sequence, chunks[sequence])
    server.kill()

    server.start()
    token = _token(server)
    expected_status = "received" if paused else "stored"
    assert _chunk_statuses(server, token, session_id) == dict.fromkeys(chunks, expected_status)
    for sequence, data in chunks.items():
        _assert_chunk_intact(server, token, session_id, sequence, data)
    if paused:
        _call(server, "POST", f"/api/v1/sessions/{session_id}/pipeline/resume", 200, token=token)
    _wait_until_stored(server, token, session_id, len(chunks))
    for sequence, data in chunks.items():
        _assert_chunk_intact(server, token, session_id, sequence, data)


@pytest.mark.parametrize("paused", [True, False], ids=["pipeline-paused", "pipeline-running"])
def test_streamed_bytes_acknowledged_before_sigkill_survive_a_restart(server, paused):
    token = _token(server)
    session_id = _recording_session(server, token, name="stream", paused=paused)
    appends = [_random_bytes(size, seed=100 + index) for index, size in enumerate(STREAM_SIZES)]
    acknowledged = 0
    for data in appends:
        result = _append(server, token, session_id, data)
        acknowledged += len(data)
        assert (result["received"], result["offset"]) == (len(data), acknowledged)
    server.kill()

    server.start()
    token = _token(server)
    recording = b"".join(appends)
    assert _append(server, token, session_id, b"")["offset"] == len(recording)
    full_chunks = len(recording) // CHUNK_SIZE
    expected_status = "received" if paused else "stored"
    statuses = _chunk_statuses(server, token, session_id)
    assert statuses == dict.fromkeys(range(full_chunks), expected_status)
    for sequence in range(full_chunks):
        _assert_chunk_intact(server, token, session_id, sequence, _piece(recording, sequence))

    _call(server, "POST", f"/api/v1/sessions/{session_id}/stop", 200, token=token)
    assert _download(server, token, f"/api/v1/sessions/{session_id}/recording") == recording
    if paused:
        _call(server, "POST", f"/api/v1/sessions/{session_id}/pipeline/resume", 200, token=token)
    chunk_count = math.ceil(len(recording) / CHUNK_SIZE)
    _wait_until_stored(server, token, session_id, chunk_count)
    for sequence in range(chunk_count):
        _assert_chunk_intact(server, token, session_id, sequence, _piece(recording, sequence))
    assert _download(server, token, f"/api/v1/sessions/{session_id}/recording") == recording
