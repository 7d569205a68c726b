"""Ingest benchmark: Lucid's HTTP chunk ingest and download against this machine's raw limits.

Run from the repository root:
`.venv/bin/python -m bench.ingest [--chunks N] [--chunk-mib 10] [--rounds 3] [--port P]
[--workers W] [--worker-concurrency C] [--clients 2] [--keep]`

For two kinds of seeded data, screen-like frames (an RDP desktop: flat windows, text, one photo;
zstd level 6 shrinks them to about a tenth) and random bytes (incompressible), it measures:

(a) the raw limit, in this process on one core: per chunk, zstd level 6, sha256 of the raw bytes,
    write of the compressed bytes and fsync, one chunk after another;
(b) our ingest: the real service (gunicorn, plus one Celery worker of --worker-concurrency
    processes when CELERY_BROKER_URL is set) receives every chunk by `PUT .../chunks/{sequence}`
    from --clients client threads (2); the clock runs from the first PUT until the pipeline
    reports every chunk stored. An "ack" is one PUT's latency up to its 201: the moment a
    recorder may forget the chunk. (a) and (b) run back to back, in --rounds rounds (3): the
    table shows their medians, and b/a is the median of each round's own ratio, so that a
    machine whose speed drifts during the run (a shared virtual machine's does) still compares
    like with like;
(c) our download: every chunk fetched back by `GET .../download` on one connection, against a
    read of the same bytes from plain files (opened unbuffered). Both fill one preallocated buffer
    of chunk size by `readinto` in 4 MiB pieces from a warm page cache, so that they differ in
    transport, not in allocation;
(c2) zstd passthrough: the same downloads with `Accept-Encoding: zstd`. A chunk stored with zstd
    comes as its stored bytes with `Content-Encoding: zstd` and is decompressed into the same
    buffer inside the clock, as a playback client would; a chunk stored uncompressed (the random
    ones: zstd does not shrink them) comes raw and is read as in (c).
Every downloaded chunk, in (c2) once decompressed, is checked against its sha256 outside the clock.

How to read the ratios: b/a is the share of the raw limit that the service delivers end to end
(HTTP, spool, database, queue, pipeline); it can exceed 1 because the service may use every core
while (a) uses one. c/read and c2/read are the download's share of a plain file read, without and
with zstd on the wire; c2 beats c when sending fewer bytes saves more than decompressing costs.
Throughputs count raw (uncompressed) bytes delivered, MB = 10^6 bytes. The service runs with its
defaults in a fresh temporary directory (on the filesystem of $TMPDIR, as are the files of (a)
and (c)); only DATABASE_URL, REDIS_URL and CELERY_BROKER_URL are taken from the caller's
environment.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import zstandard

MIB = 1 << 20
SEED = 20240601
ZSTD_LEVEL = 6
DEFAULT_CLIENTS = 2
READ_PIECE_SIZE = 4 * MIB
API = "/api/v1"
HOST = "127.0.0.1"
PIPELINE_TIMEOUT_SECONDS = 300
PIPELINE_POLL_SECONDS = 0.01
WARM_UP_CHUNKS = 8
WARM_UP_CHUNK_SIZE = 64 * 1024
STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
HTTP_TIMEOUT_SECONDS = 120
PASSED_THROUGH_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"


class BenchmarkError(Exception):
    """The benchmark cannot go on; the message says why."""


# --- Test data ----------------------------------------------------------------------------------

SCREEN_WIDTH, SCREEN_HEIGHT, BYTES_PER_PIXEL = 1920, 1080, 4
GLYPH_WIDTH, GLYPH_HEIGHT, GLYPH_COUNT = 8, 16, 96
BLANK_GLYPH = 0

Colour = tuple[int, int, int]
Glyphs = list[list[bytes]]
TextLine = list[int]


class Rect(NamedTuple):
    left: int
    top: int
    width: int
    height: int


DESKTOP_BLUE: Colour = (0, 90, 160)
TASKBAR_GREY: Colour = (20, 24, 28)
TITLE_BAR_GREY: Colour = (220, 220, 230)
PAPER_WHITE: Colour = (250, 250, 250)
INK_BLACK: Colour = (30, 30, 30)
TERMINAL_GREY: Colour = (200, 200, 200)

EDITOR = Rect(60, 70, 1140, 896)
EDITOR_TITLE_BAR = Rect(60, 40, 1140, 30)
TERMINAL = Rect(1240, 520, 624, 480)
PHOTO = Rect(1240, 60, 624, 400)
TASKBAR = Rect(0, 1040, 1920, 40)
CLOCK_POSITION = (1840, 1052)


def bgra(colour: Colour) -> bytes:
    red, green, blue = colour
    return bytes((blue, green, red, 255))


def glyph_atlas(rng: random.Random, *, ink: Colour, paper: Colour) -> Glyphs:
    """Bitmaps of GLYPH_COUNT made-up characters, one row of BGRA bytes per pixel row."""
    ink_pixel, paper_pixel = bgra(ink), bgra(paper)
    blank_row = paper_pixel * GLYPH_WIDTH
    glyphs = [[blank_row] * GLYPH_HEIGHT]
    for _ in range(GLYPH_COUNT - 1):
        glyph = [blank_row] * 3
        for _ in range(GLYPH_HEIGHT - 6):
            pixels = (ink_pixel if rng.random() < 0.35 else paper_pixel for _ in range(GLYPH_WIDTH))
            glyph.append(b"".join(pixels))
        glyph += [blank_row] * 3
        glyphs.append(glyph)
    return glyphs


def random_text_line(rng: random.Random, columns: int) -> TextLine:
    """Words of 2-9 characters up to a ragged right edge, padded with blanks to `columns`."""
    length = rng.randint(columns // 3, columns)
    line: TextLine = []
    while len(line) < length:
        line += [rng.randrange(1, GLYPH_COUNT) for _ in range(rng.randint(2, 9))]
        line.append(BLANK_GLYPH)
    return line[:length] + [BLANK_GLYPH] * (columns - length)


def noisy_photo_rows(rng: random.Random, width: int, height: int) -> list[bytes]:
    """A vertical gradient with 5 bits of noise per channel: the part of a screen that resists."""
    rows = []
    for y in range(height):
        brightness = 40 + 160 * y // height
        noise_to_channel = bytes((brightness + (value & 0x1F)) & 0xFF for value in range(256))
        row = bytearray(rng.randbytes(width * BYTES_PER_PIXEL).translate(noise_to_channel))
        row[3::BYTES_PER_PIXEL] = b"\xff" * width
        rows.append(bytes(row))
    return rows


def fill_rectangle(frame: bytearray, rect: Rect, colour: Colour) -> None:
    row = bgra(colour) * rect.width
    for y in range(rect.top, rect.top + rect.height):
        offset = (y * SCREEN_WIDTH + rect.left) * BYTES_PER_PIXEL
        frame[offset : offset + len(row)] = row


def draw_rows(frame: bytearray, left: int, top: int, rows: Sequence[bytes]) -> None:
    for y, row in enumerate(rows, start=top):
        offset = (y * SCREEN_WIDTH + left) * BYTES_PER_PIXEL
        frame[offset : offset + len(row)] = row


def draw_text(frame: bytearray, glyphs: Glyphs, left: int, top: int, lines: list[TextLine]) -> None:
    rows = [
        b"".join(glyphs[glyph][glyph_row] for glyph in line)
        for line in lines
        for glyph_row in range(GLYPH_HEIGHT)
    ]
    draw_rows(frame, left, top, rows)


def text_capacity(rect: Rect) -> tuple[int, int]:
    """Columns and lines of text that fit in `rect`."""
    return rect.width // GLYPH_WIDTH, rect.height // GLYPH_HEIGHT


class Desktop:
    """A mostly static RDP desktop: per frame a word is typed, a terminal scrolls, a clock ticks."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.editor_glyphs = glyph_atlas(rng, ink=INK_BLACK, paper=PAPER_WHITE)
        self.terminal_glyphs = glyph_atlas(rng, ink=TERMINAL_GREY, paper=TASKBAR_GREY)
        editor_columns, editor_lines = text_capacity(EDITOR)
        terminal_columns, terminal_lines = text_capacity(TERMINAL)
        self.editor = [random_text_line(rng, editor_columns) for _ in range(editor_lines - 1)]
        self.editor.append([BLANK_GLYPH] * editor_columns)
        self.terminal = [random_text_line(rng, terminal_columns) for _ in range(terminal_lines)]
        self.typed_columns = 0
        self.frame_number = 0
        self.static_screen = self.draw_static_screen()

    def draw_static_screen(self) -> bytes:
        frame = bytearray(bgra(DESKTOP_BLUE) * (SCREEN_WIDTH * SCREEN_HEIGHT))
        fill_rectangle(frame, TASKBAR, TASKBAR_GREY)
        fill_rectangle(frame, EDITOR_TITLE_BAR, TITLE_BAR_GREY)
        fill_rectangle(frame, EDITOR, PAPER_WHITE)
        fill_rectangle(frame, TERMINAL, TASKBAR_GREY)
        photo = noisy_photo_rows(self.rng, PHOTO.width, PHOTO.height)
        draw_rows(frame, PHOTO.left, PHOTO.top, photo)
        return bytes(frame)

    def next_frame(self) -> bytes:
        self.type_word()
        self.terminal = self.terminal[1:] + [random_text_line(self.rng, len(self.terminal[0]))]
        self.frame_number += 1
        frame = bytearray(self.static_screen)
        draw_text(frame, self.editor_glyphs, EDITOR.left, EDITOR.top, self.editor)
        draw_text(frame, self.terminal_glyphs, TERMINAL.left, TERMINAL.top, self.terminal)
        clock = [1 + (self.frame_number // 10**place) % 10 for place in reversed(range(5))]
        draw_text(frame, self.terminal_glyphs, *CLOCK_POSITION, [clock])
        cursor_left = EDITOR.left + self.typed_columns * GLYPH_WIDTH
        cursor_top = EDITOR.top + (len(self.editor) - 1) * GLYPH_HEIGHT
        fill_rectangle(frame, Rect(cursor_left, cursor_top, 2, GLYPH_HEIGHT), INK_BLACK)
        return bytes(frame)

    def type_word(self) -> None:
        columns = len(self.editor[0])
        word = [self.rng.randrange(1, GLYPH_COUNT) for _ in range(self.rng.randint(2, 9))]
        if self.typed_columns + len(word) + 1 > columns:
            self.editor = self.editor[1:] + [[BLANK_GLYPH] * columns]
            self.typed_columns = 0
        line = self.editor[-1]
        line[self.typed_columns : self.typed_columns + len(word)] = word
        self.typed_columns += len(word) + 1


def screen_chunks(count: int, chunk_size: int, seed: int) -> list[bytes]:
    """Consecutive 1920x1080 BGRA frames of a desktop session, cut into chunks."""
    desktop = Desktop(random.Random(seed))
    stream = bytearray()
    chunks: list[bytes] = []
    while len(chunks) < count:
        stream += desktop.next_frame()
        while len(stream) >= chunk_size and len(chunks) < count:
            chunks.append(bytes(stream[:chunk_size]))
            del stream[:chunk_size]
    return chunks


def random_chunks(count: int, chunk_size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(chunk_size) for _ in range(count)]


DATA_KINDS: dict[str, Callable[[int, int, int], list[bytes]]] = {
    "screen": screen_chunks,
    "random": random_chunks,
}


# --- Local limits -------------------------------------------------------------------------------


class ReadableInto(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True)
class RawLimit:
    megabytes_per_second: float
    zstd_ratio: float


def megabytes_per_second(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def measure_raw_limit(chunks: list[bytes], directory: Path) -> RawLimit:
    """Per chunk: zstd level 6, sha256 of the raw bytes, write the compressed bytes, fsync."""
    directory.mkdir(parents=True)
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    compressed_size = 0
    started = time.perf_counter()
    for sequence, chunk in enumerate(chunks):
        compressed = compressor.compress(chunk)
        hashlib.sha256(chunk).digest()
        with open(directory / f"{sequence}.zst", "wb") as file:
            file.write(compressed)
            file.flush()
            os.fsync(file.fileno())
        compressed_size += len(compressed)
    elapsed = time.perf_counter() - started
    raw_size = sum(map(len, chunks))
    return RawLimit(megabytes_per_second(raw_size, elapsed), compressed_size / raw_size)


def write_plain_files(chunks: list[bytes], directory: Path) -> list[Path]:
    directory.mkdir(parents=True)
    paths = [directory / f"{sequence}.raw" for sequence in range(len(chunks))]
    for path, chunk in zip(paths, chunks, strict=True):
        path.write_bytes(chunk)
    return paths


def preallocated_buffer(size: int) -> memoryview:
    """`size` bytes already written once, so that no measured read pays for mapping its pages."""
    return memoryview(bytearray(b"\xff") * size)


def read_into(source: ReadableInto, buffer: memoryview) -> int:
    """Read `source` to its end into `buffer` in READ_PIECE_SIZE pieces; return the bytes read."""
    filled = 0
    while piece_size := source.readinto(buffer[filled : filled + READ_PIECE_SIZE]):
        filled += piece_size
    if filled == len(buffer) and source.readinto(memoryview(bytearray(1))):
        raise BenchmarkError(f"more than {len(buffer)} bytes to read into a buffer of chunk size")
    return filled


def measure_plain_read(paths: list[Path], buffer: memoryview) -> float:
    """MB/s of reading the files back into `buffer`, straight from the page cache."""
    size, elapsed = 0, 0.0
    for path in paths:
        started = time.perf_counter()
        with open(path, "rb", buffering=0) as file:
            size += read_into(file, buffer)
        elapsed += time.perf_counter() - started
    return megabytes_per_second(size, elapsed)


# --- The service --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class Service:
    port: int
    celery_worker: subprocess.Popen[bytes] | None


def free_port(requested: int) -> int:
    """`requested` if nothing listens on it (any free port for 0), else BenchmarkError."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, requested))
        except OSError as error:
            raise BenchmarkError(f"port {requested} is not free: {error}") from error
        return probe.getsockname()[1]


def service_environment(
    workdir: Path, *, port: int, workers: int, credentials: Credentials
) -> dict[str, str]:
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "PORT": str(port),
        "GUNICORN_WORKERS": str(workers),
        "LUCID_STORAGE_PATH": str(workdir / "service" / "sessions"),
        "LUCID_CHUNK_STORE_PATH": str(workdir / "service" / "chunks"),
        "DJANGO_STATIC_ROOT": str(workdir / "service" / "static"),
        "DJANGO_SUPERUSER_USERNAME": credentials.username,
        "DJANGO_SUPERUSER_PASSWORD": credentials.password,
    }
    for name in PASSED_THROUGH_VARIABLES:
        if os.environ.get(name):
            environment[name] = os.environ[name]
    return environment


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_manage_command(arguments: list[str], environment: dict[str, str], log_path: Path) -> None:
    with open(log_path, "ab") as log:
        completed = subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", *arguments],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=STARTUP_TIMEOUT_SECONDS,
        )
    if completed.returncode != 0:
        raise BenchmarkError(
            f"manage.py {' '.join(arguments)} exited with {completed.returncode}:\n"
            f"{log_tail(log_path)}"
        )


def start_process(
    command: list[str], environment: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start `command` in its own process group, so that stopping it stops its children too."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after STOP_TIMEOUT_SECONDS."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_port(port: int, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchmarkError(f"gunicorn exited with {server.returncode}:\n{log_tail(log_path)}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BenchmarkError(f"gunicorn did not listen on port {port}:\n{log_tail(log_path)}")


def wait_for_celery_worker(
    worker: subprocess.Popen[bytes], node_name: str, environment: dict[str, str], log_path: Path
) -> None:
    """Wait until the worker answers a ping, so that its start-up is not counted as ingest."""
    ping = [str(VENV_BIN / "celery"), "-A", "lucid", "inspect", "ping", "-d", node_name]
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise BenchmarkError(
                f"the Celery worker exited with {worker.returncode}:\n{log_tail(log_path)}"
            )
        answered = subprocess.run(
            [*ping, "--timeout", "1"],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            timeout=STARTUP_TIMEOUT_SECONDS,
        )
        if answered.returncode == 0:
            return
    raise BenchmarkError(f"the Celery worker {node_name} did not answer:\n{log_tail(log_path)}")


def start_service(
    workdir: Path,
    options: argparse.Namespace,
    credentials: Credentials,
    processes: list[subprocess.Popen[bytes]],
) -> Service:
    """Migrate, create the user, start gunicorn (and a Celery worker when a broker is set).

    Every started process is appended to `processes` at once, for the caller to stop.
    """
    port = free_port(options.port)
    environment = service_environment(
        workdir, port=port, workers=options.workers, credentials=credentials
    )
    logs = workdir / "logs"
    logs.mkdir()
    run_manage_command(["migrate", "--noinput"], environment, logs / "manage.log")
    run_manage_command(["ensure_superuser"], environment, logs / "manage.log")
    gunicorn = [str(VENV_BIN / "gunicorn"), "lucid.wsgi", "--config", "lucid/gunicorn.conf.py"]
    gunicorn.append("--no-control-socket")  # the default one in $HOME is shared by every gunicorn
    server = start_process(gunicorn, environment, logs / "gunicorn.log")
    processes.append(server)
    celery_worker = None
    if "CELERY_BROKER_URL" in environment:
        node_name = f"lucid-bench-{os.getpid()}@{socket.gethostname()}"
        worker_command = [str(VENV_BIN / "celery"), "-A", "lucid", "worker", "-l", "warning"]
        concurrency = str(options.worker_concurrency)
        worker_command += [
            "--concurrency",
            concurrency,
            "-Q",
            "processing,storage",
            "-n",
            node_name,
        ]
        celery_worker = start_process(worker_command, environment, logs / "celery.log")
        processes.append(celery_worker)
        wait_for_celery_worker(celery_worker, node_name, environment, logs / "celery.log")
    wait_for_port(port, server, logs / "gunicorn.log")
    return Service(port, celery_worker)


def resident_bytes(pid: int, field: str) -> int:
    """A resident-memory figure of the process from /proc: VmRSS (now) or VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise BenchmarkError(f"/proc/{pid}/status has no {field}")


def process_tree_resident_bytes(pid: int, field: str) -> int:
    """The largest figure among the process and its children (a Celery worker's pool)."""
    children = {
        int(child)
        for children_file in Path(f"/proc/{pid}/task").glob("*/children")
        for child in children_file.read_text().split()
    }
    return max(resident_bytes(process, field) for process in [pid, *children])


# --- HTTP ---------------------------------------------------------------------------------------


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
    """One keep-alive HTTP connection to the service, with a JWT once `token` is given."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT_SECONDS)
        self.token = token

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

    def close(self) -> None:
        self.connection.close()


def obtain_token(port: int, credentials: Credentials) -> str:
    client = ApiClient(port)
    try:
        answer = client.call(
            "POST",
            f"{API}/auth/token",
            {"username": credentials.username, "password": credentials.password},
        )
    finally:
        client.close()
    return answer["access"]


def start_recording_session(client: ApiClient, kind: str, chunk_size: int) -> str:
    session = client.call(
        "POST",
        f"{API}/sessions",
        {
            "name": f"bench-{kind}",
            "chunk_size": chunk_size,
            "compression_algorithm": "zstd",
            "compression_level": ZSTD_LEVEL,
        },
        expected=201,
    )
    client.call("POST", f"{API}/sessions/{session['id']}/start")
    return session["id"]


def chunk_path(session_id: str, sequence: int) -> str:
    return f"{API}/sessions/{session_id}/chunks/{sequence}"


def put_chunk(
    client: ApiClient, session_id: str, sequence: int, chunk: bytes, digest: bytes
) -> float:
    """PUT one chunk with its sha256 `digest`; return the seconds until its 201 (the ack)."""
    content_digest = f"sha-256=:{base64.b64encode(digest).decode()}:"
    headers = {"Content-Type": "application/octet-stream", "Content-Digest": content_digest}
    path = chunk_path(session_id, sequence)
    started = time.perf_counter()
    response = client.send("PUT", path, body=chunk, headers=headers)
    answer = response.read()
    acked = time.perf_counter()
    if response.status != 201:
        raise UnexpectedResponse("PUT", path, response.status, answer)
    return acked - started


def put_chunk_share(
    port: int,
    token: str,
    session_id: str,
    chunks: list[bytes],
    digests: list[bytes],
    sequences: range,
) -> list[float]:
    """PUT the chunks at `sequences` one after another on one connection; return their acks."""
    client = ApiClient(port, token)
    try:
        return [
            put_chunk(client, session_id, sequence, chunks[sequence], digests[sequence])
            for sequence in sequences
        ]
    finally:
        client.close()


def warm_up(port: int, token: str, *, clients: int) -> None:
    """Small uploads first, so every server and worker process has loaded its code."""
    client = ApiClient(port, token)
    try:
        session_id = start_recording_session(client, "warm-up", WARM_UP_CHUNK_SIZE)
        pieces = [random.randbytes(WARM_UP_CHUNK_SIZE) for _ in range(WARM_UP_CHUNKS)]
        digests = [hashlib.sha256(piece).digest() for piece in pieces]
        upload_chunks(port, token, session_id, pieces, digests, clients=clients)
        wait_until_stored(client, session_id, WARM_UP_CHUNKS)
    finally:
        client.close()


def upload_chunks(
    port: int,
    token: str,
    session_id: str,
    chunks: list[bytes],
    digests: list[bytes],
    *,
    clients: int,
) -> list[float]:
    """PUT every chunk from `clients` threads; return the ack latencies in seconds."""
    shares = [range(first, len(chunks), clients) for first in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        uploads = [
            pool.submit(put_chunk_share, port, token, session_id, chunks, digests, share)
            for share in shares
        ]
        return [latency for upload in uploads for latency in upload.result()]


def wait_until_stored(client: ApiClient, session_id: str, count: int) -> None:
    deadline = time.monotonic() + PIPELINE_TIMEOUT_SECONDS
    while True:
        pipeline = client.call("GET", f"{API}/sessions/{session_id}/pipeline")
        if pipeline["failed"] > 0:
            raise BenchmarkError(
                f"the pipeline failed {pipeline['failed']} chunk(s): {pipeline.get('last_error')}"
            )
        if pipeline["stored"] >= count:
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"{count} chunks not stored after {PIPELINE_TIMEOUT_SECONDS} s: {pipeline}"
            )
        time.sleep(PIPELINE_POLL_SECONDS)


@dataclass(frozen=True)
class Download:
    megabytes_per_second: float
    zstd_encoded_chunks: int


def receive_raw_bytes(
    response: http.client.HTTPResponse,
    buffer: memoryview,
    decompressor: zstandard.ZstdDecompressor,
) -> int:
    """Read the body into `buffer`, decompressing a zstd-encoded one; return the raw size."""
    encoding = response.getheader("Content-Encoding")
    if encoding is None:
        return read_into(response, buffer)
    if encoding != "zstd":
        raise BenchmarkError(f"a download came with Content-Encoding: {encoding}")
    with decompressor.stream_reader(response, read_size=READ_PIECE_SIZE, closefd=False) as reader:
        return read_into(reader, buffer)


def measure_download(
    client: ApiClient,
    session_id: str,
    digests: list[bytes],
    buffer: memoryview,
    *,
    accept_zstd: bool,
) -> Download:
    """Download every chunk into `buffer`; each one's sha256 is checked outside the clock.

    With `accept_zstd`, chunks stored with zstd come compressed and are decompressed on the clock.
    """
    headers = {"Accept-Encoding": "zstd"} if accept_zstd else {}
    decompressor = zstandard.ZstdDecompressor()
    size, elapsed, zstd_encoded_chunks = 0, 0.0, 0
    for sequence, digest in enumerate(digests):
        path = f"{chunk_path(session_id, sequence)}/download"
        started = time.perf_counter()
        response = client.send("GET", path, headers=headers)
        if response.status != 200:
            raise UnexpectedResponse("GET", path, response.status, response.read())
        try:
            received = receive_raw_bytes(response, buffer, decompressor)
        except zstandard.ZstdError as error:
            raise BenchmarkError(f"GET {path}: {error}") from error
        elapsed += time.perf_counter() - started
        encoding = response.getheader("Content-Encoding", "none")
        if response.read():
            raise BenchmarkError(f"GET {path}: bytes follow the end of the zstd frame")
        if hashlib.sha256(buffer[:received]).digest() != digest:
            raise BenchmarkError(
                f"GET {path}: {received} bytes (Content-Encoding: {encoding}, decoded)"
                " do not match the uploaded chunk's sha256"
            )
        size += received
        zstd_encoded_chunks += encoding == "zstd"
    return Download(megabytes_per_second(size, elapsed), zstd_encoded_chunks)


# --- One data kind ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindResult:
    kind: str
    raw_limit: float
    ingest: float
    ingest_ratios: list[float]
    ack_p50_ms: float
    ack_p99_ms: float
    download: float
    passthrough: float
    passthrough_zstd_chunks: int
    plain_read: float
    zstd_ratio: float


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: with few values, p99 is the slowest one."""
    ranked = sorted(values)
    return ranked[max(math.ceil(fraction * len(ranked)) - 1, 0)]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_ingest_round(
    kind: str,
    chunks: list[bytes],
    digests: list[bytes],
    *,
    port: int,
    token: str,
    directory: Path,
    clients: int,
) -> tuple[RawLimit, float, list[float], str]:
    """(a) then (b) on the same chunks, back to back; returns (a), (b) MB/s, acks, the session."""
    raw_limit = measure_raw_limit(chunks, directory)
    client = ApiClient(port, token)
    try:
        session_id = start_recording_session(client, kind, len(chunks[0]))
        started = time.perf_counter()
        acks = upload_chunks(port, token, session_id, chunks, digests, clients=clients)
        wait_until_stored(client, session_id, len(chunks))
        ingest_seconds = time.perf_counter() - started
    finally:
        client.close()
    return raw_limit, megabytes_per_second(sum(map(len, chunks)), ingest_seconds), acks, session_id


def measure_kind(
    kind: str,
    chunks: list[bytes],
    *,
    port: int,
    token: str,
    workdir: Path,
    rounds: int,
    clients: int,
) -> KindResult:
    digests = [hashlib.sha256(chunk).digest() for chunk in chunks]
    raw_limits: list[float] = []
    ingests: list[float] = []
    acks: list[float] = []
    for round_number in range(1, rounds + 1):
        progress(f"{kind}: round {round_number} of {rounds}: (a) raw limit, then (b) ingest")
        raw_limit, ingest, round_acks, session_id = measure_ingest_round(
            kind,
            chunks,
            digests,
            port=port,
            token=token,
            directory=workdir / "raw-limit" / kind / str(round_number),
            clients=clients,
        )
        raw_limits.append(raw_limit.megabytes_per_second)
        ingests.append(ingest)
        acks += round_acks
    buffer = preallocated_buffer(len(chunks[0]))
    plain_read = measure_plain_read(write_plain_files(chunks, workdir / "plain" / kind), buffer)
    client = ApiClient(port, token)
    try:
        progress(f"{kind}: (c) download")
        download = measure_download(client, session_id, digests, buffer, accept_zstd=False)
        progress(f"{kind}: (c2) zstd passthrough")
        passthrough = measure_download(client, session_id, digests, buffer, accept_zstd=True)
    finally:
        client.close()
    return KindResult(
        kind=kind,
        raw_limit=statistics.median(raw_limits),
        ingest=statistics.median(ingests),
        ingest_ratios=[b / a for a, b in zip(raw_limits, ingests, strict=True)],
        ack_p50_ms=percentile(acks, 0.50) * 1000,
        ack_p99_ms=percentile(acks, 0.99) * 1000,
        download=download.megabytes_per_second,
        passthrough=passthrough.megabytes_per_second,
        passthrough_zstd_chunks=passthrough.zstd_encoded_chunks,
        plain_read=plain_read,
        zstd_ratio=raw_limit.zstd_ratio,
    )


# --- Report -------------------------------------------------------------------------------------

COLUMNS: list[tuple[str, Callable[[KindResult], str]]] = [
    ("(a) zstd6+sha256+fsync MB/s", lambda result: f"{result.raw_limit:.1f}"),
    ("(b) ingest MB/s", lambda result: f"{result.ingest:.1f}"),
    ("b/a", lambda result: f"{statistics.median(result.ingest_ratios):.2f}"),
    ("ack p50 ms", lambda result: f"{result.ack_p50_ms:.1f}"),
    ("ack p99 ms", lambda result: f"{result.ack_p99_ms:.1f}"),
    ("(c) download MB/s", lambda result: f"{result.download:.1f}"),
    ("plain read MB/s", lambda result: f"{result.plain_read:.1f}"),
    ("c/read", lambda result: f"{result.download / result.plain_read:.2f}"),
    ("(c2) passthrough MB/s", lambda result: f"{result.passthrough:.1f}"),
    ("c2/read", lambda result: f"{result.passthrough / result.plain_read:.2f}"),
    ("zstd ratio", lambda result: f"{result.zstd_ratio:.3f}"),
]
KIND_WIDTH = max(len("kind"), *map(len, DATA_KINDS))


def print_table(results: list[KindResult]) -> None:
    print("  ".join(["kind".ljust(KIND_WIDTH), *(title for title, _ in COLUMNS)]))
    for result in results:
        cells = [cell(result).rjust(len(title)) for title, cell in COLUMNS]
        print("  ".join([result.kind.ljust(KIND_WIDTH), *cells]))


class WorkerMemory(NamedTuple):
    idle: int
    peak: int


def print_report(
    results: list[KindResult], options: argparse.Namespace, worker_memory: WorkerMemory | None
) -> None:
    print_table(results)
    passed_through = ", ".join(
        f"{result.kind} {result.passthrough_zstd_chunks} of {options.chunks}" for result in results
    )
    print(f"(c2) chunks sent as Content-Encoding: zstd: {passed_through}")
    per_round = "; ".join(
        f"{result.kind} " + " ".join(f"{ratio:.2f}" for ratio in result.ingest_ratios)
        for result in results
    )
    print(f"b/a of each round ((a) and (b) back to back; the table shows the median): {per_round}")
    broker = "yes, one Celery worker" if worker_memory is not None else "no, tasks in-process"
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python"
        f" {platform.python_version()}, broker: {broker}"
    )
    celery = ""
    if worker_memory is not None:
        celery = f", Celery worker concurrency {options.worker_concurrency}"
    print(
        f"run: {options.rounds} rounds of {options.chunks} chunks of {options.chunk_mib} MiB"
        " per kind,"
        f" {options.workers} gunicorn workers{celery}, {options.clients} client threads"
    )
    if worker_memory is not None:
        chunk_size = options.chunk_mib * MIB
        grown = worker_memory.peak - worker_memory.idle
        print(
            f"celery worker memory: peak RSS {worker_memory.peak / MIB:.1f} MiB, idle after"
            f" warm-up {worker_memory.idle / MIB:.1f} MiB; growth while processing"
            f" {grown / MIB:.1f} MiB = {grown / chunk_size:.1f} x chunk size"
        )


# --- Main ---------------------------------------------------------------------------------------


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    summary = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=summary)
    parser.add_argument("--chunks", type=int, default=24, help="chunks per data kind")
    parser.add_argument("--chunk-mib", type=int, default=10, help="chunk size in MiB")
    parser.add_argument(
        "--clients", type=int, default=DEFAULT_CLIENTS, help="client threads uploading at once"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="(a)+(b) rounds per kind; medians are reported"
    )
    parser.add_argument("--port", type=int, default=0, help="service port (default: a free one)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=2,
        help="processes of the Celery worker, when CELERY_BROKER_URL is set",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def run(
    options: argparse.Namespace, workdir: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    credentials = Credentials(f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    progress(f"starting the service in {workdir}")
    service = start_service(workdir, options, credentials, processes)
    token = obtain_token(service.port, credentials)
    chunk_size = options.chunk_mib * MIB
    warm_up(service.port, token, clients=options.clients)
    worker_idle_rss = None
    if service.celery_worker is not None:
        worker_idle_rss = process_tree_resident_bytes(service.celery_worker.pid, "VmRSS")
    results = []
    for kind, make_chunks in DATA_KINDS.items():
        progress(f"{kind}: generating {options.chunks} chunks of {options.chunk_mib} MiB")
        chunks = make_chunks(options.chunks, chunk_size, SEED)
        results.append(
            measure_kind(
                kind,
                chunks,
                port=service.port,
                token=token,
                workdir=workdir,
                rounds=options.rounds,
                clients=options.clients,
            )
        )
    worker_memory = None
    if service.celery_worker is not None:
        peak = process_tree_resident_bytes(service.celery_worker.pid, "VmHWM")
        worker_memory = WorkerMemory(idle=worker_idle_rss, peak=peak)
    print_report(results, options, worker_memory)


def exit_on_sigterm(signal_number: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so that `main` still stops the service and cleans up."""
    raise SystemExit(128 + signal_number)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="lucid-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        run(options, workdir, processes)
    except BenchmarkError as error:
        print(f"bench.ingest: {error}", file=sys.stderr)
        return 1
    finally:
        for process in reversed(processes):
            stop_process(process)
        if options.keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
