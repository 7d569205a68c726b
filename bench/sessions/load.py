"""The load of one step: N recording sessions, each appending to its stream once a second, from a
bounded pool of keep-alive connections; the acks, the errors and the CPU time they cost."""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.client import API, ApiClient
from bench.ingest.transfer import start_recording_session
from bench.measure import machine_cpu_seconds, process_trees_cpu_seconds

START_LEAD_SECONDS = 0.5
SETTLE_INTERVAL_SECONDS = 0.5
SETTLE_TIMEOUT_SECONDS = 60
# CPU time of the service's processes under which an interval counts as idle (2 ticks).
IDLE_CPU_SECONDS = 0.02
SETUP_CONNECTIONS = 4


@dataclass(frozen=True, order=True)
class Append:
    """One append: when it is due (seconds after the step's start), to which session."""

    due: float
    session_id: str
    payload_index: int


class Schedule:
    """Every append of the step in due order, handed out one at a time to the connections."""

    def __init__(self, appends: list[Append]) -> None:
        self.appends = iter(sorted(appends))
        self.lock = threading.Lock()

    def next(self) -> Append | None:
        with self.lock:
            return next(self.appends, None)


@dataclass
class Outcome:
    """What one connection saw: each append's ack and lateness in seconds, the second of the
    step each acknowledged append was due in, and its errors."""

    acks: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    due_seconds: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class StepLoad:
    """The step's appends as measured: acks, lateness and errors from every connection, the CPU
    seconds of the service's processes, of this client process and of the whole machine (busy,
    and in all: its cores' time), and the machine's 1-minute load average at its end."""

    sessions: int
    acks: list[float]
    lateness: list[float]
    due_seconds: list[int]
    errors: Counter[str]
    seconds: float
    service_cpu_seconds: float
    client_cpu_seconds: float
    machine_busy_seconds: float
    machine_seconds: float
    load_average: float


def start_sessions(port: int, token: str, count: int, chunk_size: int) -> list[str]:
    """`count` new sessions of `chunk_size`, started (recording)."""

    def start_one(number: int) -> str:
        with ApiClient(port, token) as client:
            return start_recording_session(client, f"sessions-{number}", chunk_size)

    with ThreadPoolExecutor(SETUP_CONNECTIONS) as pool:
        return list(pool.map(start_one, range(count)))


def append(client: ApiClient, item: Append, payload: bytes) -> str | None:
    """POST `payload` to the session's stream; None on 200, else what went wrong."""
    path = f"{API}/sessions/{item.session_id}/stream"
    headers = {"Content-Type": "application/octet-stream"}
    try:
        response = client.send("POST", path, body=payload, headers=headers)
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        client.connection.close()
        return type(error).__name__
    if response.status != 200:
        return f"{response.status} {body[:120].decode(errors='replace')}"
    return None


def connection_loop(
    port: int,
    token: str,
    schedule: Schedule,
    *,
    payloads: list[bytes],
    started: float,
    session_locks: dict[str, threading.Lock],
) -> Outcome:
    """Take the next due append, wait for its time, send it; until the schedule is empty.

    A session's appends go one after another, as a recorder's do: one waits for the previous.
    """
    outcome = Outcome()
    with ApiClient(port, token) as client:
        while (item := schedule.next()) is not None:
            due = started + item.due
            time.sleep(max(due - time.perf_counter(), 0))
            with session_locks[item.session_id]:
                outcome.lateness.append(time.perf_counter() - due)
                error = append(client, item, payloads[item.payload_index])
                acked = time.perf_counter()
            if error is None:
                outcome.acks.append(acked - due)
                outcome.due_seconds.append(int(item.due))
            else:
                outcome.errors[error] += 1
    return outcome


def wait_until_idle(pids: list[int]) -> None:
    """Wait until the service spends less than IDLE_CPU_SECONDS an interval (pipeline work the
    appends started, such as a Celery worker compressing completed chunks)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    before = process_trees_cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_INTERVAL_SECONDS)
        now = process_trees_cpu_seconds(pids)
        if now - before < IDLE_CPU_SECONDS:
            return
        before = now


def run_step(
    port: int,
    token: str,
    pids: list[int],
    session_ids: list[str],
    *,
    payloads: list[bytes],
    seconds: int,
    connections: int,
) -> StepLoad:
    """Each session appends once a second for `seconds`; the sessions' appends are spread evenly
    over each second, as independent recorders' would be."""
    count = len(session_ids)
    schedule = Schedule(
        [
            Append(second + index / count, session_id, (second * count + index) % len(payloads))
            for second in range(seconds)
            for index, session_id in enumerate(session_ids)
        ]
    )
    session_locks = {session_id: threading.Lock() for session_id in session_ids}
    cpu_before, client_before = process_trees_cpu_seconds(pids), time.process_time()
    busy_before, machine_before = machine_cpu_seconds()
    started = time.perf_counter() + START_LEAD_SECONDS
    with ThreadPoolExecutor(connections) as pool:
        runs = [
            pool.submit(
                connection_loop,
                port,
                token,
                schedule,
                payloads=payloads,
                started=started,
                session_locks=session_locks,
            )
            for _ in range(connections)
        ]
        outcomes = [run.result() for run in runs]
    elapsed = time.perf_counter() - started
    wait_until_idle(pids)
    busy_after, machine_after = machine_cpu_seconds()
    return StepLoad(
        sessions=count,
        acks=[ack for outcome in outcomes for ack in outcome.acks],
        lateness=[late for outcome in outcomes for late in outcome.lateness],
        due_seconds=[second for outcome in outcomes for second in outcome.due_seconds],
        errors=sum((outcome.errors for outcome in outcomes), Counter()),
        seconds=elapsed,
        service_cpu_seconds=process_trees_cpu_seconds(pids) - cpu_before,
        client_cpu_seconds=time.process_time() - client_before,
        machine_busy_seconds=busy_after - busy_before,
        machine_seconds=machine_after - machine_before,
        load_average=os.getloadavg()[0],
    )
