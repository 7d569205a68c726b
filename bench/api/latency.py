"""Latencies of the measured endpoints, from concurrent clients in rounds."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.api.database import BENCH_USER
from bench.client import API, ApiClient, UnexpectedResponse, refreshed_access_token
from bench.errors import BenchmarkError
from bench.harness import SEED, progress
from bench.measure import percentile

DEEP_PAGE = 5_000
PAGE_SIZE = 50
WARM_UP_REQUESTS_PER_CLIENT = 20
ROUNDS = 4
WALK_PROGRESS_EVERY_PAGES = 1_000


@dataclass(frozen=True)
class Endpoint:
    """A measured endpoint: its name and the path of each request (drawn from a seeded rng)."""

    name: str
    path: Callable[[random.Random], str]


@dataclass(frozen=True)
class Latency:
    endpoint: str
    requests: int
    p50_ms: float
    p99_ms: float


def fetch(client: ApiClient, path: str) -> float:
    """GET `path` and read the whole answer, which must be 200; return the seconds it took."""
    started = time.perf_counter()
    response = client.send("GET", path)
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise UnexpectedResponse("GET", path, response.status, body)
    return elapsed


def client_latencies(
    port: int,
    token: str,
    endpoint: Endpoint,
    *,
    seed: int,
    warm_up: int,
    count: int,
    start_together: threading.Barrier,
) -> list[float]:
    """One client: warm up on its own connection, wait for the others, time `count` requests."""
    rng = random.Random(seed)
    with ApiClient(port, token) as client:
        try:
            for _ in range(warm_up):
                fetch(client, endpoint.path(rng))
            start_together.wait()
            return [fetch(client, endpoint.path(rng)) for _ in range(count)]
        except BaseException:
            start_together.abort()
            raise


def timed_requests(
    port: int,
    token: str,
    endpoint: Endpoint,
    *,
    requests: int,
    clients: int,
    warm_up: int,
    rng: random.Random,
) -> list[float]:
    """The latencies of `requests` requests from `clients` concurrent clients, in seconds."""
    shares = [requests // clients + (client < requests % clients) for client in range(clients)]
    start_together = threading.Barrier(clients)
    with ThreadPoolExecutor(clients) as pool:
        runs = [
            pool.submit(
                client_latencies,
                port,
                token,
                endpoint,
                seed=rng.getrandbits(64),
                warm_up=warm_up,
                count=share,
                start_together=start_together,
            )
            for share in shares
        ]
        return [latency for run in runs for latency in run.result()]


def measure(
    port: int, refresh_token: str, endpoints: list[Endpoint], *, requests: int, clients: int
) -> list[Latency]:
    """Each endpoint's latencies, gathered in ROUNDS rounds that each visit every endpoint.

    Passing load elsewhere on the machine then falls on every endpoint alike. The first round
    warms each endpoint up on every client's connection.
    """
    samples: dict[str, list[float]] = {endpoint.name: [] for endpoint in endpoints}
    rng = random.Random(SEED)
    for round_number in range(ROUNDS):
        warm_up = WARM_UP_REQUESTS_PER_CLIENT if round_number == 0 else 1
        round_requests = requests // ROUNDS + (round_number < requests % ROUNDS)
        progress(f"measuring: round {round_number + 1} of {ROUNDS}")
        for endpoint in endpoints:
            token = refreshed_access_token(port, refresh_token)
            samples[endpoint.name] += timed_requests(
                port,
                token,
                endpoint,
                requests=round_requests,
                clients=clients,
                warm_up=warm_up,
                rng=rng,
            )
    return [
        Latency(
            name,
            len(latencies),
            percentile(latencies, 0.50) * 1000,
            percentile(latencies, 0.99) * 1000,
        )
        for name, latencies in samples.items()
    ]


def path_of(url: str) -> str:
    """The path and query of an absolute `next` link, to request on our own connection."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def deep_page_path(port: int, token: str, first_page: str) -> str:
    """Follow `next` from `first_page` to page DEEP_PAGE; check where it starts."""
    path, started = first_page, time.perf_counter()
    with ApiClient(port, token) as client:
        for page in range(2, DEEP_PAGE + 1):
            answer = client.call("GET", path)
            if answer["next"] is None:
                raise BenchmarkError(f"{first_page} has only {page - 1} pages")
            path = path_of(answer["next"])
            if page % WALK_PROGRESS_EVERY_PAGES == 0:
                elapsed = time.perf_counter() - started
                progress(f"page {page:,} reached ({elapsed / (page - 1) * 1000:.1f} ms a page)")
        first_sequence = client.call("GET", path)["results"][0]["sequence"]
    if first_sequence != (DEEP_PAGE - 1) * PAGE_SIZE:
        raise BenchmarkError(f"page {DEEP_PAGE} starts at sequence {first_sequence}")
    return path


def check_trivial_view(port: int, token: str) -> None:
    with ApiClient(port, token) as client:
        username = client.call("GET", f"{API}/auth/me")["username"]
    if username != BENCH_USER.username:
        raise BenchmarkError(f"{API}/auth/me says {username!r}, not {BENCH_USER.username!r}")


def endpoints(port: int, token: str, session_ids: list[str], deep_id: str) -> list[Endpoint]:
    """The measured endpoints, the trivial view first; walks to the deep page."""
    first_page = f"{API}/sessions/{deep_id}/chunks"
    progress(f"following `next` to page {DEEP_PAGE:,} of session {deep_id}")
    deep_page = deep_page_path(port, token, first_page)
    return [
        Endpoint("GET /auth/me (trivial)", lambda rng: f"{API}/auth/me"),
        Endpoint("GET /sessions/{id}", lambda rng: f"{API}/sessions/{rng.choice(session_ids)}"),
        Endpoint("GET /sessions/{deep}/chunks", lambda rng: first_page),
        Endpoint(f"  same, page {DEEP_PAGE:,}", lambda rng: deep_page),
        Endpoint("GET /sessions/statistics", lambda rng: f"{API}/sessions/statistics"),
    ]
