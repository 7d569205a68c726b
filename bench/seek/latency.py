"""Timed `Range` GETs of /recording at random offsets, with the service's CPU time."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from bench.client import API, ApiClient, UnexpectedResponse
from bench.errors import BenchmarkError
from bench.measure import percentile, process_trees_cpu_seconds
from bench.seek.data import recording_bytes

WARM_UP_REQUESTS = 50


@dataclass(frozen=True)
class Recording:
    """A stopped session under test: how it is named in the report and what it holds."""

    label: str
    session_id: str
    session_index: int
    chunks: int
    chunk_size: int

    @property
    def size(self) -> int:
        return self.chunks * self.chunk_size


@dataclass
class Samples:
    """What a session's requests measured, over all rounds."""

    recording: Recording
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds / len(self.latencies) * 1000


def fetch_range(client: ApiClient, recording: Recording, start: int, end: int) -> bytes:
    """Bytes `start`..`end` of the recording by one `Range` GET, which must answer them (206)."""
    path = f"{API}/sessions/{recording.session_id}/recording"
    response = client.send("GET", path, headers={"Range": f"bytes={start}-{end}"})
    body = response.read()
    if response.status != 206:
        raise UnexpectedResponse("GET", path, response.status, body)
    expected = f"bytes {start}-{end}/{recording.size}"
    if response.getheader("Content-Range") != expected or len(body) != end - start + 1:
        raise BenchmarkError(
            f"GET {path} with Range bytes={start}-{end} answered {len(body)} bytes as"
            f" {response.getheader('Content-Range')!r}, not {expected!r}"
        )
    return body


def random_range(rng: random.Random, recording: Recording, length: int) -> tuple[int, int]:
    start = rng.randrange(recording.size - length + 1)
    return start, start + length - 1


def check_bytes(client: ApiClient, recording: Recording, rng: random.Random, length: int) -> None:
    """One range compared with the bytes the fill wrote there."""
    start, end = random_range(rng, recording, length)
    body = fetch_range(client, recording, start, end)
    if body != recording_bytes(recording.session_index, recording.chunk_size, start, end):
        raise BenchmarkError(f"{recording.label}: bytes {start}-{end} differ from those written")


def measure_block(
    client: ApiClient,
    samples: Samples,
    rng: random.Random,
    *,
    requests: int,
    length: int,
    pids: list[int],
) -> None:
    """`requests` timed range GETs one after another, and the service's CPU time over them."""
    recording = samples.recording
    check_bytes(client, recording, rng, length)
    ranges = [random_range(rng, recording, length) for _ in range(requests)]
    cpu_before = process_trees_cpu_seconds(pids)
    for start, end in ranges:
        started = time.perf_counter()
        fetch_range(client, recording, start, end)
        samples.latencies.append(time.perf_counter() - started)
    samples.cpu_seconds += process_trees_cpu_seconds(pids) - cpu_before


def warm_up(client: ApiClient, recordings: list[Recording], rng: random.Random, length: int):
    """Untimed requests on each session, so that the worker has loaded its code and the files."""
    for recording in recordings:
        for _ in range(WARM_UP_REQUESTS):
            fetch_range(client, recording, *random_range(rng, recording, length))
