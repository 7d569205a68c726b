"""The roles as separate machines with nothing shared on disk: the spool and chunks in S3.

Issue 17: an api, two recorders, two processors, storage and pipeline (beat, for the watchdog),
each a process group with private, empty LUCID_STORAGE_PATH, LUCID_CHUNK_STORE_PATH and
LUCID_BACKUP_PATH directories; PostgreSQL (a database of its own, `lucid_topology_s3_<pid>`),
Redis (databases 15 and 8, emptied before and after) and SeaweedFS' `weed mini` as the bucket,
with LUCID_STORAGE_BACKEND=s3 under a prefix of this run's own.

Two sessions are recorded at once:
- `stream`: two writers append to the same stream at the same time, one through recorder A and
  one through recorder B, so that their compare-and-set appends race (409 `stream_conflict`: the
  piece is sent again). Each 200 says where its bytes went (`offset - received`).
- `put`: chunk PUTs alternating between the recorders.

Mid-ingest, recorder A is killed with SIGKILL while a request is surely in flight (a POST whose
body is half sent) and while the writers keep going; a writer that loses its connection sends
the piece again through the other recorder, and the piece is "uncertain" (it may or may not be in
the stream). Processor 1, alone at first, is killed with SIGKILL while it holds chunks; processor
2 starts, recorder A and processor 1 are started again, and the rest is uploaded through both
recorders. Once the sessions are stopped and every chunk is stored, each recording is downloaded
from the api and from a second api started only then, on an empty directory of its own (the
recorder role serves no /recording): every acknowledged append is at the offset its 200 named,
every other byte of the stream is an uncertain piece, the PUT session is exactly what was sent,
and no role's private directory holds a spool file or a chunk.

Runs when the topology test runs: DATABASE_URL on PostgreSQL (or MONGO_URL) and a Redis broker.
"""

import http.client
import json
import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.sizes import MIB
from tests.e2e.topology_backing import topology_backing, topology_skip_reason
from tests.e2e.topology_databases import TopologyDatabase
from tests.support.client import API, ServiceClient, content_digest, login, session_start
from tests.support.ports import HOST, free_ports, healthy, wait_until_answering
from tests.support.processes import BIN, ProcessGroup, manage
from tests.support.s3 import S3Service, weed_mini
from tests.support.server import environment

KIB = 1024
CHUNK_SIZE = 2 * MIB
PUT_CHUNKS = 8
STREAM_SIZE = 6 * MIB + 4_321  # per writer
STREAM_PIECE = 512 * KIB + 123
# zstd 19 takes a noticeable fraction of a second per 2 MiB chunk: chunks are still being
# processed when processor 1 is killed.
COMPRESSION_LEVEL = 19
WATCHDOG_INTERVAL_SECONDS = 5
WATCHDOG_STALE_SECONDS = 10
BROKER_DB, CACHE_DB = 15, 8
STARTUP_SECONDS = 120
KILL_WINDOW_SECONDS = 60
WRITERS_SECONDS = 180
STORED_SECONDS = 180
HTTP_SECONDS = 60
BUSY_SECONDS = 120
LOG_TAIL_LINES = 300
DATABASE_NAME = f"lucid_topology_s3_{os.getpid()}"
WATCHDOG_TASK = "lucid: pipeline watchdog"


SKIP_REASON = topology_skip_reason(DATABASE_NAME)
pytestmark = pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "runs")


# --- the topology -------------------------------------------------------------------------------


@dataclass
class Role:
    """One `manage.py serve <role>` process group, on a port and a directory of its own."""

    name: str
    role: str
    port: int
    root: Path
    group: ProcessGroup | None = None
    up: bool = False


class Topology:
    def __init__(self, root: Path, database: TopologyDatabase, s3: S3Service, **urls: str):
        self.root = root
        self.database = database
        self.s3 = s3
        self.prefix = f"topology-{uuid.uuid4().hex[:12]}"
        self.roles: dict[str, Role] = {}
        self.groups: list[ProcessGroup] = []
        self.lock = threading.Lock()
        # One environment for every role (the same DJANGO_SECRET_KEY); the paths differ per role.
        self.env = environment(
            root / "migrate",
            **database.environment,
            CELERY_BROKER_URL=urls["broker_url"],
            REDIS_URL=urls["cache_url"],
            LUCID_WATCHDOG_INTERVAL_SECONDS=str(WATCHDOG_INTERVAL_SECONDS),
            LUCID_WATCHDOG_STALE_SECONDS=str(WATCHDOG_STALE_SECONDS),
            LUCID_TASK_RETRY_DELAY_SECONDS="1",
            LUCID_STORAGE_BACKEND="s3",
            LUCID_S3_ENDPOINT_URL=s3.endpoint_url,
            LUCID_S3_BUCKET=s3.bucket,
            LUCID_S3_PREFIX=self.prefix,
            LUCID_S3_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=s3.access_key_id,
            AWS_SECRET_ACCESS_KEY=s3.secret_access_key,
            LUCID_STORAGE_QUOTA_BYTES=str(10 * 1024 * MIB),
        )

    def migrate(self) -> None:
        for command in (["migrate", "--noinput"], ["ensure_superuser"]):
            completed = manage(*command, env=self.env)
            assert completed.returncode == 0, f"{command}: {completed.stdout}{completed.stderr}"

    def add(self, name: str, role: str) -> Role:
        (port,) = free_ports(1)
        self.roles[name] = Role(name, role, port, self.root / name)
        return self.roles[name]

    def start(self, name: str) -> Role:
        role = self.roles[name]
        role.root.mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            "LUCID_STORAGE_PATH": str(role.root / "sessions"),
            "LUCID_CHUNK_STORE_PATH": str(role.root / "chunks"),
            "LUCID_BACKUP_PATH": str(role.root / "backups"),
            "DJANGO_STATIC_ROOT": str(role.root / "static"),
            "XDG_RUNTIME_DIR": str(role.root),
            f"LUCID_{role.role.upper()}_PORT": str(role.port),
        }
        command = [str(BIN / "python"), "manage.py", "serve", role.role]
        log_path = self.root / f"{name}-{len(self.groups)}.log"
        role.group = ProcessGroup(name, command, env=env, log_path=log_path)
        self.groups.append(role.group)
        return role

    def wait_healthy(self, *names: str) -> None:
        roles = [self.roles[name] for name in names]
        wait_until_answering(
            {role.name: role.port for role in roles},
            seconds=STARTUP_SECONDS,
            watching=[role.group for role in roles],
        )
        for role in roles:
            role.group.members()
            role.up = True

    def kill(self, name: str) -> None:
        """SIGKILL the role's whole process group, and wait until every member is gone."""
        role = self.roles[name]
        role.up = False
        role.group.members()
        role.group.stop(signal.SIGKILL)

    def recorder_port(self, preferred: str) -> int:
        """The preferred recorder's port while it is up, else the other one's."""
        role = self.roles[preferred]
        if role.up:
            return role.port
        other = "recorder-b" if preferred == "recorder-a" else "recorder-a"
        return self.roles[other].port

    def client(self, name: str, *, token: str | None = None) -> ServiceClient:
        return ServiceClient(self.roles[name].port, token=token, logs=self.logs)

    def logs(self) -> str:
        return "\n".join(
            f"--- {group.name} ({group.log_path}) ---\n{group.log(last_lines=LOG_TAIL_LINES)}"
            for group in self.groups
        )


@pytest.fixture
def topology(tmp_path):
    with (
        topology_backing(DATABASE_NAME, broker_db=BROKER_DB, cache_db=CACHE_DB) as backing,
        weed_mini(tmp_path / "seaweedfs") as s3,
    ):
        lucid = Topology(
            tmp_path / "roles",
            backing.database,
            s3,
            broker_url=backing.broker_url,
            cache_url=backing.cache_url,
        )
        try:
            yield lucid
        finally:
            try:
                for group in lucid.groups:
                    group.kill()
            finally:
                print(lucid.logs())


# --- HTTP, without assertions: a lost connection is an outcome here -----------------------------


def _send(port: int, method: str, path: str, token: str, body: bytes = b"", headers=None):
    """(status, JSON answer); raises OSError or HTTPException when the connection is lost."""
    connection = http.client.HTTPConnection(HOST, port, timeout=HTTP_SECONDS)
    try:
        connection.request(
            method,
            path,
            body=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
                **(headers or {}),
            },
        )
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    return response.status, (json.loads(content) if content else {})


LOST = (OSError, http.client.HTTPException)


def _busy(status: int, answer: dict, *, since: float) -> bool:
    """Whether to send again after a 503 `database_busy`, which stored nothing, as a recorder
    does until BUSY_SECONDS after `since` (on MongoDB a process killed inside a transaction holds
    its documents for up to a minute)."""
    if status != 503 or answer.get("code") != "database_busy":
        return False
    if time.monotonic() - since > BUSY_SECONDS:
        return False
    time.sleep(1)
    return True


@dataclass
class Writer:
    """Appends `data` piece by piece through its preferred recorder (the other when it is down).

    `acked`: (start, piece) of every 200; `uncertain`: pieces whose connection was lost (sent
    again, maybe in the stream); `failures`: any other answer, which fails the test.
    """

    topology: Topology = field(repr=False)
    recorder: str
    session_id: str
    token: str = field(repr=False)
    data: bytes = field(repr=False)
    halfway: threading.Event
    go_on: threading.Event
    acked: list[tuple[int, bytes]] = field(default_factory=list)
    uncertain: list[bytes] = field(default_factory=list)
    conflicts: int = 0
    failures: list[str] = field(default_factory=list)

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.failures.append(repr(error))

    def _run(self) -> None:
        position, acked_at = 0, time.monotonic()
        while position < len(self.data):
            if position >= len(self.data) // 2 and not self.halfway.is_set():
                self.halfway.set()
                assert self.go_on.wait(WRITERS_SECONDS)
            piece = self.data[position : position + STREAM_PIECE]
            port = self.topology.recorder_port(self.recorder)
            path = f"{API}/sessions/{self.session_id}/stream"
            try:
                status, answer = _send(port, "POST", path, self.token, piece)
            except LOST:
                self.uncertain.append(piece)
                time.sleep(0.05)
                continue
            if status == 409 and answer.get("code") == "stream_conflict":
                self.conflicts += 1
                continue
            if _busy(status, answer, since=acked_at):
                continue
            if status != 200:
                self.failures.append(f"POST :{port}{path} -> {status} {answer}")
                return
            assert answer["received"] == len(piece), answer
            self.acked.append((answer["offset"] - answer["received"], piece))
            position, acked_at = position + len(piece), time.monotonic()


@dataclass
class Putter:
    """PUTs chunk after chunk, alternating recorders; a lost connection sends it again."""

    topology: Topology = field(repr=False)
    session_id: str
    token: str = field(repr=False)
    data: bytes = field(repr=False)
    halfway: threading.Event
    go_on: threading.Event
    lost: int = 0
    failures: list[str] = field(default_factory=list)

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # noqa: BLE001
            self.failures.append(repr(error))

    def _run(self) -> None:
        for sequence in range(PUT_CHUNKS):
            if sequence == PUT_CHUNKS // 2:
                self.halfway.set()
                assert self.go_on.wait(WRITERS_SECONDS)
            piece = self.data[sequence * CHUNK_SIZE : (sequence + 1) * CHUNK_SIZE]
            path = f"{API}/sessions/{self.session_id}/chunks/{sequence}"
            headers = {"Content-Digest": content_digest(piece)}
            attempt = 0
            first_sent = time.monotonic()
            while True:
                recorder = ("recorder-a", "recorder-b")[(sequence + attempt) % 2]
                port = self.topology.recorder_port(recorder)
                try:
                    status, answer = _send(port, "PUT", path, self.token, piece, headers)
                except LOST:
                    self.lost += 1
                    attempt += 1
                    time.sleep(0.05)
                    continue
                if _busy(status, answer, since=first_sent):
                    continue
                if status not in (200, 201):
                    self.failures.append(f"PUT :{port}{path} -> {status} {answer}")
                    return
                assert (answer["sequence"], answer["size"]) == (sequence, len(piece)), answer
                break


def _half_sent_append(port: int, session_id: str, token: str, piece: bytes):
    """A stream append whose head and first half are sent, the rest never: in flight for sure."""
    connection = http.client.HTTPConnection(HOST, port, timeout=HTTP_SECONDS)
    connection.putrequest("POST", f"{API}/sessions/{session_id}/stream")
    connection.putheader("Authorization", f"Bearer {token}")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(len(piece)))
    connection.endheaders()
    connection.send(piece[: len(piece) // 2])
    return connection


# --- data and checks ----------------------------------------------------------------------------


def _recording(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes that zstd halves: each 16 KiB block comes twice."""
    rng = random.Random(seed)
    blocks = (rng.randbytes(16 * KIB) for _ in range(size // (32 * KIB) + 1))
    return b"".join(block + block for block in blocks)[:size]


def _assert_stream(recording: bytes, writers: list[Writer], never: bytes) -> int:
    """Every acknowledged piece where its 200 said; the rest uncertain pieces. Acked bytes."""
    acked = sorted(item for writer in writers for item in writer.acked)
    uncertain = [piece for writer in writers for piece in writer.uncertain]
    end = 0
    gaps = []
    for start, piece in acked:
        assert start >= end, f"two acknowledged appends overlap at {start} (previous end {end})"
        assert recording[start : start + len(piece)] == piece, (
            f"acknowledged append [{start}, {start + len(piece)}) downloads other bytes"
        )
        if start > end:
            gaps.append((end, start))
        end = start + len(piece)
    if len(recording) > end:
        gaps.append((end, len(recording)))
    for gap_start, gap_end in gaps:
        position = gap_start
        while position < gap_end:
            matching = [
                piece
                for piece in uncertain
                if recording[position : position + len(piece)] == piece
                and position + len(piece) <= gap_end
            ]
            assert matching, (
                f"bytes [{position}, {gap_end}) of the stream are no append that was sent"
            )
            uncertain.remove(matching[0])
            position += len(matching[0])
    assert never[: 64 * KIB] not in recording, "the half-sent append's bytes are in the stream"
    return sum(len(piece) for _, piece in acked)


def _assert_private_directories_hold_no_data(topology: Topology) -> None:
    roots = [path for path in topology.root.iterdir() if path.is_dir()]
    assert len(roots) >= len(topology.roles)
    for root in roots:
        for area in ("chunks", "sessions/spool", "backups"):
            files = [path for path in (root / area).rglob("*") if path.is_file()]
            assert not files, f"{root.name} wrote {area} files on its own disk: {files[:5]}"


def _objects(topology: Topology, area: str) -> list[str]:
    client = topology.s3.client()
    keys, token = [], None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = client.list_objects_v2(
            Bucket=topology.s3.bucket, Prefix=f"{topology.prefix}/{area}/", **extra
        )
        keys += [item["Key"] for item in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def _wait_all_stored(topology: Topology, at_least: int) -> int:
    """Until every chunk is stored (at least `at_least` of them); how many there are."""
    deadline = time.monotonic() + STORED_SECONDS
    while True:
        counts = topology.database.chunk_counts()
        if set(counts) == {"stored"} and counts["stored"] >= at_least:
            return counts["stored"]
        assert not counts.get("failed"), counts
        assert time.monotonic() < deadline, f"not every chunk stored: {counts}"
        time.sleep(0.5)


class ProcessorKiller(threading.Thread):
    """SIGKILLs processor 1 as soon as a chunk is processing; `abandoned`: the chunks it held."""

    def __init__(self, topology: Topology) -> None:
        super().__init__(daemon=True)
        self.topology = topology
        self.abandoned: list = []
        self.failure = ""

    def run(self) -> None:
        try:
            _wait(
                lambda: self.topology.database.chunk_counts().get("processing"),
                KILL_WINDOW_SECONDS,
                "no chunk was ever processing",
            )
            self.topology.kill("processor-1")
            self.abandoned = self.topology.database.processing_chunk_ids()
        except Exception as error:  # noqa: BLE001
            self.failure = repr(error)


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


# --- the test -----------------------------------------------------------------------------------


def test_no_acknowledged_byte_is_lost_across_machines_sharing_only_s3(topology):
    started = time.monotonic()
    topology.migrate()
    for name, role in (
        ("api", "api"),
        ("recorder-a", "recorder"),
        ("recorder-b", "recorder"),
        ("processor-1", "processor"),
        ("processor-2", "processor"),
        ("storage", "storage"),
        ("pipeline", "pipeline"),
        ("api-2", "api"),
    ):
        topology.add(name, role)
    first = ("api", "recorder-a", "recorder-b", "processor-1", "storage", "pipeline")
    for name in first:
        topology.start(name)
    topology.wait_healthy(*first)
    assert topology.database.interval(WATCHDOG_TASK) == (WATCHDOG_INTERVAL_SECONDS, "seconds")

    recorder = login(topology.client("recorder-a"))
    token = recorder.token
    api = topology.client("api", token=token)
    sessions = {
        style: session_start(
            recorder,
            name=f"topology s3 {style}",
            chunk_size=CHUNK_SIZE,
            compression_algorithm="zstd",
            compression_level=COMPRESSION_LEVEL,
        )
        for style in ("stream", "put")
    }
    go_on = threading.Event()
    writers = [
        Writer(
            topology,
            name,
            sessions["stream"],
            token,
            _recording(seed, STREAM_SIZE),
            threading.Event(),
            go_on,
        )
        for seed, name in ((1, "recorder-a"), (2, "recorder-b"))
    ]
    put_data = _recording(3, PUT_CHUNKS * CHUNK_SIZE)
    putter = Putter(topology, sessions["put"], token, put_data, threading.Event(), go_on)
    workers = [*writers, putter]
    threads = [threading.Thread(target=worker.run, daemon=True) for worker in workers]
    killer = ProcessorKiller(topology)
    killer.start()
    for thread in threads:
        thread.start()
    try:
        # Recorder A dies mid-ingest, with a half-sent append in flight for sure.
        _wait(lambda: len(writers[0].acked) >= 2, KILL_WINDOW_SECONDS, "writer A made no append")
        never = _recording(4, 2 * MIB)
        half_sent = _half_sent_append(
            topology.roles["recorder-a"].port, sessions["stream"], token, never
        )
        time.sleep(0.3)
        topology.kill("recorder-a")
        with pytest.raises(LOST):
            half_sent.send(never[len(never) // 2 :])
            half_sent.getresponse().read()
        half_sent.close()

        # Processor 1, the only one so far, dies holding chunks (meanwhile, in a thread).
        killer.join(KILL_WINDOW_SECONDS)
        assert not killer.is_alive() and not killer.failure, killer.failure
        abandoned = killer.abandoned
        assert abandoned, "processor 1 died holding no chunk"

        # The others carry on; recorder A and processor 1 come back, processor 2 joins.
        for worker in workers:
            assert worker.halfway.wait(WRITERS_SECONDS), f"{worker} never got halfway"
        for name in ("processor-2", "recorder-a", "processor-1"):
            topology.start(name)
        topology.wait_healthy("processor-2", "recorder-a", "processor-1")
        go_on.set()
        for thread in threads:
            thread.join(WRITERS_SECONDS)
            assert not thread.is_alive(), "an uploader hangs"
    finally:
        go_on.set()
    failures = [failure for worker in workers for failure in worker.failures]
    assert not failures, f"{failures}\n{topology.logs()}"

    for session_id in sessions.values():
        api.call("POST", f"{API}/sessions/{session_id}/stop")
    total = _wait_all_stored(topology, PUT_CHUNKS + 2 * STREAM_SIZE // CHUNK_SIZE)

    # Downloads from the api, and from an api started now on an empty directory of its own.
    topology.start("api-2")
    topology.wait_healthy("api-2")
    recordings = {}
    for name in ("api", "api-2"):
        client = topology.client(name, token=token)
        for style, session_id in sessions.items():
            status, content = client.request("GET", f"{API}/sessions/{session_id}/recording")
            assert status == 200, (name, style, status)
            recordings.setdefault(style, content)
            assert content == recordings[style], f"{name} downloads another {style} recording"
    assert recordings["put"] == put_data, "the PUT session downloads other bytes"
    acked_stream = _assert_stream(recordings["stream"], writers, never)
    assert acked_stream == 2 * STREAM_SIZE

    # The killed processor's chunks were queued again by the watchdog and stored by another.
    attempts = topology.database.chunk_attempts(abandoned)
    assert all(count >= 2 for count in attempts), attempts
    assert any("watchdog: queueing" in group.log() for group in topology.groups)

    # Nothing on any role's own disk; the chunks are objects in the bucket.
    _assert_private_directories_hold_no_data(topology)
    assert len(_objects(topology, "chunks")) >= total
    for role in topology.roles.values():
        assert healthy(role.port), role.name
    print(
        f"stream: {len(recordings['stream'])} bytes, {acked_stream} acknowledged, "
        f"{sum(w.conflicts for w in writers)} conflicts, "
        f"{sum(len(w.uncertain) for w in writers)} lost connections; "
        f"put: {putter.lost} lost connections; abandoned chunks {len(abandoned)}; "
        f"{time.monotonic() - started:.0f} s"
    )
