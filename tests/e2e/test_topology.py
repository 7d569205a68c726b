"""The five roles as local processes against PostgreSQL or MongoDB and a Redis broker, end to end.

Runs with DATABASE_URL on PostgreSQL and a Redis CELERY_BROKER_URL (the second run of .ci/run),
and with MONGO_URL and a Redis REDIS_URL (the third run): the roles get MONGO_URL instead of
DATABASE_URL, and the broker is CELERY_BROKER_URL's Redis server if set, else REDIS_URL's. It
shares nothing with the rest of the suite: a database of its own on the same server
(`lucid_topology_<pid>`, dropped before and after; tests/e2e/topology_databases.py reads it
directly, in SQL or with MongoDB queries), Redis databases 9 (broker) and 10 (cache), emptied
before and after, fresh storage paths and free ports for the five roles.

Two runs of the topology, because honcho, which `make serve` runs, stops every process as soon as
one of them exits: a processor killed under `make serve` takes the other four roles down with it.
1. `make serve` itself: it migrates the fresh database, creates the superuser, starts the five
   roles from the Procfile; the recording starts and its first third is stored; then SIGTERM to
   the `make serve` group must stop every role within honcho's five seconds (no SIGKILL).
2. The same Procfile's api, storage, pipeline and recorder under honcho, and its processor
   command (`manage.py serve processor`) as a process group of its own, so that it can die alone:
   the rest is uploaded, one session's pipeline is paused and resumed, the processor is killed
   with SIGKILL while chunks are being processed and started again, and nothing is lost.

The watchdog's schedule: migration pipeline_app 0003 creates the PeriodicTask with
LUCID_WATCHDOG_INTERVAL_SECONDS as read when the migration runs. `make serve` runs it on the fresh
database with this test's environment, so the schedule is 5 s from the start: the test checks
that row instead of rewriting it. Chunks a killed worker held are queued again once they are
LUCID_WATCHDOG_STALE_SECONDS (10 s) old.
"""

import math
import os
import random
import signal
import time
from pathlib import Path

import pytest

from core.sizes import MIB
from tests.e2e.topology_backing import topology_backing, topology_skip_reason
from tests.e2e.topology_databases import TopologyDatabase
from tests.support.client import (
    API,
    ServiceClient,
    append,
    login,
    put_chunk,
    session_start,
    wait_until_stored,
)
from tests.support.ports import free_ports, healthy, wait_until_answering
from tests.support.processes import BIN, ProcessGroup, command_line
from tests.support.server import environment

ROLES = ("api", "storage", "pipeline", "recorder", "processor")
CHUNK_SIZE = 4 * MIB
RECORDING_SIZE = 50 * MIB
CHUNKS_PER_SESSION = math.ceil(RECORDING_SIZE / CHUNK_SIZE)
# Where each session's upload stops in the first and second run: odd places, mid-chunk.
STREAM_CUTS = (17 * MIB + 12_345, 34 * MIB + 999, RECORDING_SIZE)
PUT_CUTS = (4, 9, CHUNKS_PER_SESSION)
STREAM_PIECE = 6 * MIB + 7
# zstd 19 takes about 0.3 s a chunk here: a backlog is still being processed when the processor
# is killed, without slowing the whole test much.
COMPRESSION_LEVEL = 19
WATCHDOG_INTERVAL_SECONDS = 5
WATCHDOG_STALE_SECONDS = 10
WATCHDOG_TASK = "lucid: pipeline watchdog"
BROKER_DB, CACHE_DB = 9, 10
STARTUP_SECONDS = 120
FIRST_THIRD_SECONDS = 60
KILL_WINDOW_SECONDS = 30
STORED_SECONDS = 180
LOG_TAIL_LINES = 400
DATABASE_NAME = f"lucid_topology_{os.getpid()}"


SKIP_REASON = topology_skip_reason(DATABASE_NAME)
pytestmark = pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "runs")


# --- the topology -------------------------------------------------------------------------------


class Topology:
    """The fresh database, broker, paths and ports, and the process groups running on them."""

    def __init__(
        self, root: Path, database: TopologyDatabase, broker_url: str, cache_url: str
    ) -> None:
        self.root = root
        self.database = database
        self.ports = dict(zip(ROLES, free_ports(len(ROLES)), strict=True))
        self.groups: list[ProcessGroup] = []
        self.env = environment(
            root,
            **database.environment,
            CELERY_BROKER_URL=broker_url,
            REDIS_URL=cache_url,
            LUCID_WATCHDOG_INTERVAL_SECONDS=str(WATCHDOG_INTERVAL_SECONDS),
            LUCID_WATCHDOG_STALE_SECONDS=str(WATCHDOG_STALE_SECONDS),
            LUCID_TASK_RETRY_DELAY_SECONDS="1",
            PORT=str(self.ports["api"]),
            **{f"LUCID_{role.upper()}_PORT": str(port) for role, port in self.ports.items()},
        )

    def start(self, name: str, command: list[str]) -> ProcessGroup:
        log_path = self.root / f"{name}.log"
        group = ProcessGroup(name, command, env=self.env, log_path=log_path)
        self.groups.append(group)
        return group

    def start_processor(self, name: str) -> ProcessGroup:
        return self.start(name, [str(BIN / "python"), "manage.py", "serve", "processor"])

    def wait_healthy(self, *groups: ProcessGroup, roles=ROLES) -> None:
        """Until every role answers /health with 200, while each of `groups` keeps running."""
        ports = {role: self.ports[role] for role in roles}
        wait_until_answering(ports, seconds=STARTUP_SECONDS, watching=groups)
        for group in groups:
            group.members()

    def client(self, role: str, *, token: str | None = None) -> ServiceClient:
        return ServiceClient(self.ports[role], token=token, logs=self.logs)

    def logs(self) -> str:
        return "\n".join(
            f"--- {group.name} ({group.log_path}) ---\n{group.log(last_lines=LOG_TAIL_LINES)}"
            for group in self.groups
        )


@pytest.fixture
def topology(tmp_path):
    with topology_backing(DATABASE_NAME, broker_db=BROKER_DB, cache_db=CACHE_DB) as backing:
        lucid = Topology(tmp_path, backing.database, backing.broker_url, backing.cache_url)
        try:
            yield lucid
        finally:
            try:
                for group in lucid.groups:
                    group.kill()
            finally:
                print(lucid.logs())


# --- HTTP ---------------------------------------------------------------------------------------


def _login(topology: Topology) -> tuple[ServiceClient, ServiceClient]:
    """Clients of the recorder and API ports, holding a JWT obtained through the recorder."""
    recorder = login(topology.client("recorder"))
    return recorder, topology.client("api", token=recorder.token)


def _recording(seed: int) -> bytes:
    """Deterministic pseudo-random bytes that zstd halves: each 16 KiB block comes twice."""
    rng = random.Random(seed)
    blocks = (rng.randbytes(16 * 1024) for _ in range(RECORDING_SIZE // (32 * 1024)))
    return b"".join(block + block for block in blocks)


def _stream(recorder: ServiceClient, session_id: str, data: bytes, start: int, stop: int) -> None:
    for offset in range(start, stop, STREAM_PIECE):
        piece = data[offset : min(offset + STREAM_PIECE, stop)]
        result = append(recorder, session_id, piece)
        assert (result["received"], result["offset"]) == (len(piece), offset + len(piece))


def _put(recorder: ServiceClient, session_id: str, data: bytes, sequences: range) -> None:
    for sequence in sequences:
        piece = data[sequence * CHUNK_SIZE : (sequence + 1) * CHUNK_SIZE]
        put_chunk(recorder, session_id, sequence, piece)


def _metrics(client: ServiceClient) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(client.fetch("/metrics").decode())
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        if family.name.startswith("lucid_")
        for sample in family.samples
    }


# --- the database, read directly ---------------------------------------------------------------


def _stuck_without_claim(topology: Topology) -> list[tuple]:
    """Chunks `processing` with no claimed_at for longer than the watchdog could ever wait."""
    patience = WATCHDOG_STALE_SECONDS + 3 * WATCHDOG_INTERVAL_SECONDS
    return topology.database.chunks_processing_unclaimed(older_than_seconds=patience)


# --- the steps -----------------------------------------------------------------------------------


def _create_sessions(recorder: ServiceClient) -> dict[str, str]:
    """A recording session per upload style, started; style -> session id."""
    sessions = {}
    for style in ("stream", "put"):
        sessions[style] = session_start(
            recorder,
            name=f"topology {style}",
            chunk_size=CHUNK_SIZE,
            compression_algorithm="zstd",
            compression_level=COMPRESSION_LEVEL,
        )
    return sessions


def _upload_part(recorder: ServiceClient, sessions: dict, recordings: dict, part: int) -> None:
    """The `part`-th third of both recordings; the last third's PUTs go in reverse order."""
    stream_start = STREAM_CUTS[part - 1] if part else 0
    _stream(recorder, sessions["stream"], recordings["stream"], stream_start, STREAM_CUTS[part])
    sequences = range(PUT_CUTS[part - 1] if part else 0, PUT_CUTS[part])
    if part == len(PUT_CUTS) - 1:
        sequences = sequences[::-1]
    _put(recorder, sessions["put"], recordings["put"], sequences)


def _kill_mid_processing(topology: Topology, processor: ProcessGroup) -> list:
    """SIGKILL the processor's celery processes once a chunk is processing; the chunks it held."""
    deadline = time.monotonic() + KILL_WINDOW_SECONDS
    while not (counts := topology.database.chunk_counts()).get("processing"):
        assert time.monotonic() < deadline, f"nothing processing: {counts}"
        time.sleep(0.005)
    workers = {pid for pid in processor.members() if "-n processor@" in command_line(pid)}
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    processor.stop(signal.SIGKILL)
    assert len(workers) >= 2, "the processor's main process and its pool processes"
    return topology.database.processing_chunk_ids()


def _wait_all_stored(topology: Topology, total: int) -> None:
    deadline = time.monotonic() + STORED_SECONDS
    while (counts := topology.database.chunk_counts()).get("stored", 0) < total:
        assert not counts.get("failed"), counts
        stuck = _stuck_without_claim(topology)
        assert not stuck, (
            "chunks `processing` without claimed_at, which the watchdog never queues again "
            f"(pipeline_app.services._claim must set claimed_at): {stuck}"
        )
        assert time.monotonic() < deadline, f"not all {total} chunks stored: {counts}"
        time.sleep(0.5)
    assert counts == {"stored": total}


def _assert_statistics_agree(api: ServiceClient, sessions: dict) -> int:
    """Each session's and the system's statistics against what was sent; the compressed total."""
    compressed = 0
    for session_id in sessions.values():
        statistics = api.call("GET", f"{API}/sessions/{session_id}/statistics")
        chunks = api.call("GET", f"{API}/sessions/{session_id}/chunks?page_size=1000")
        stored_sizes = [chunk["compressed_size"] for chunk in chunks["results"]]
        assert statistics["chunk_count"] == CHUNKS_PER_SESSION
        assert statistics["size"] == RECORDING_SIZE
        assert statistics["compressed_size"] == sum(stored_sizes) < RECORDING_SIZE
        assert statistics["chunks_by_status"] == {
            "received": 0,
            "processing": 0,
            "stored": CHUNKS_PER_SESSION,
            "failed": 0,
            "damaged": 0,
        }
        compressed += statistics["compressed_size"]
    system = api.call("GET", f"{API}/sessions/statistics")
    total_chunks = len(sessions) * CHUNKS_PER_SESSION
    assert (system["session_count"], system["sessions_by_status"]["stopped"]) == (2, 2)
    assert (system["chunk_count"], system["chunks_by_status"]["stored"]) == (total_chunks,) * 2
    assert (system["size"], system["compressed_size"]) == (2 * RECORDING_SIZE, compressed)
    assert system["backlog_bytes"] == 0
    return compressed


def _assert_metrics_agree(topology: Topology, compressed: int) -> None:
    """Every role's /metrics reports the same totals, those of what was sent."""
    for role in ROLES:
        metrics = _metrics(topology.client(role))
        stored_bytes = sum(
            value for (name, _), value in metrics.items() if name == "lucid_bytes_stored_total"
        )
        assert metrics[("lucid_bytes_received_total", ())] == 2 * RECORDING_SIZE, role
        assert metrics[("lucid_chunks", (("status", "stored"),))] == 2 * CHUNKS_PER_SESSION, role
        assert metrics[("lucid_chunks", (("status", "processing"),))] == 0, role
        assert metrics[("lucid_sessions", (("status", "stopped"),))] == 2, role
        assert metrics[("lucid_pipeline_backlog_bytes", ())] == 0, role
        assert stored_bytes == compressed, role


# --- the test -----------------------------------------------------------------------------------


def test_a_recording_survives_the_topology_a_restart_and_a_processor_killed_mid_way(topology):
    run_started = time.monotonic()
    recordings = {"stream": _recording(seed=1), "put": _recording(seed=2)}

    # 1. `make serve`: migrate, superuser, the five roles; the first third, stored.
    serve = topology.start("make-serve", ["make", "serve"])
    topology.wait_healthy(serve)
    schedule = topology.database.interval(WATCHDOG_TASK)
    assert schedule == (WATCHDOG_INTERVAL_SECONDS, "seconds")
    recorder, api = _login(topology)
    sessions = _create_sessions(recorder)
    _upload_part(recorder, sessions, recordings, 0)
    first_third = STREAM_CUTS[0] // CHUNK_SIZE
    wait_until_stored(api, sessions["stream"], first_third, seconds=FIRST_THIRD_SECONDS)
    wait_until_stored(api, sessions["put"], PUT_CUTS[0], seconds=FIRST_THIRD_SECONDS)
    api.call("POST", f"{API}/sessions/{sessions['stream']}/pipeline/pause")

    serve.stop(signal.SIGTERM)
    assert "sending SIGKILL" not in serve.log(), "a role outlived honcho's grace on SIGTERM"

    # 2. The Procfile's other roles under honcho, the processor in a group of its own.
    roles = topology.start(
        "honcho", [str(BIN / "honcho"), "start", "--procfile", "Procfile", *ROLES[:-1]]
    )
    processor = topology.start_processor("processor-1")
    topology.wait_healthy(roles, processor)
    recorder, api = _login(topology)

    # The second third: the stream session's pipeline is paused, its chunks wait.
    _upload_part(recorder, sessions, recordings, 1)
    paused = api.call("GET", f"{API}/sessions/{sessions['stream']}/pipeline")
    waiting = STREAM_CUTS[1] // CHUNK_SIZE - STREAM_CUTS[0] // CHUNK_SIZE
    assert (paused["state"], paused["received"]) == ("paused", waiting), paused
    api.call("POST", f"{API}/sessions/{sessions['stream']}/pipeline/resume")

    # The processor dies holding chunks; the last third comes in while none runs.
    abandoned = _kill_mid_processing(topology, processor)
    assert abandoned, "the processor died holding no chunk"
    _upload_part(recorder, sessions, recordings, 2)
    for session_id in sessions.values():
        recorder.call("POST", f"{API}/sessions/{session_id}/stop")
    restarted = topology.start_processor("processor-2")
    topology.wait_healthy(restarted, roles, roles=["processor"])
    _wait_all_stored(topology, 2 * CHUNKS_PER_SESSION)

    for style, session_id in sessions.items():
        status, content = api.request("GET", f"{API}/sessions/{session_id}/recording")
        assert status == 200
        assert content == recordings[style], f"the {style} session downloads other bytes"
    compressed = _assert_statistics_agree(api, sessions)
    _assert_metrics_agree(topology, compressed)
    for role in ROLES:
        assert healthy(topology.ports[role]), role

    # The beat schedule ran, and the watchdog gave the killed worker's chunks to the new one.
    runs, last_run = topology.database.runs(WATCHDOG_TASK)
    assert runs > 0 and last_run is not None
    attempts = topology.database.chunk_attempts(abandoned)
    assert all(count >= 2 for count in attempts), attempts
    assert "watchdog: queueing" in restarted.log()

    # Graceful shutdown of everything left, within honcho's grace.
    restarted.stop(signal.SIGTERM)
    roles.stop(signal.SIGTERM)
    assert "sending SIGKILL" not in roles.log(), "a role outlived honcho's grace on SIGTERM"
    assert time.monotonic() - run_started < 240
