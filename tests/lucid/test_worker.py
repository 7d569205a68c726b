"""The web roles' gunicorn worker: heads read by the poller, slow clients, threads and their
database connections."""

import os
import selectors
import socket
import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from gunicorn.config import Config
from gunicorn.glogging import Logger

from lucid import worker as worker_module
from lucid.worker import (
    ClientSocket,
    SlowLane,
    ThreadPool,
    Worker,
    release_database_connections,
)

HEAD = b"GET /health HTTP/1.1\r\nHost: lucid\r\n\r\n"
ANSWER_SECONDS = 2.0


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Length", "5")])
    return [b"hello"]


@pytest.fixture
def worker():
    """A worker of two threads serving `_hello`, its loop turned by `_spin`."""
    cfg = Config()
    cfg.set("threads", 2)
    listener = socket.create_server(("127.0.0.1", 0))
    lucid = Worker(0, os.getppid(), [listener], None, 30, cfg, Logger(cfg))
    lucid.wsgi = _hello
    lucid.tpool = lucid.get_thread_pool()
    lucid.poller = selectors.DefaultSelector()
    lucid.method_queue.init()
    lucid.poller.register(
        lucid.method_queue.fileno(), selectors.EVENT_READ, lucid.method_queue.run_callbacks
    )
    lucid.set_accept_enabled(True)
    yield lucid
    lucid.tpool.shutdown(wait=False)
    lucid.poller.close()
    lucid.method_queue.close()
    listener.close()
    lucid.tmp.close()


def _spin(worker: Worker, seconds: float = 0.3) -> None:
    """Turn the worker's loop for a while, as gunicorn's ThreadWorker.run does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        can_accept = worker.nr_conns < worker.worker_connections
        if can_accept != worker._accepting:
            worker.set_accept_enabled(can_accept)
        worker.wait_for_and_dispatch_events(timeout=0.02)
        worker.murder_keepalived()
        worker.murder_pending()


def _connect(worker: Worker) -> socket.socket:
    client = socket.create_connection(worker.sockets[0].getsockname(), timeout=ANSWER_SECONDS)
    _spin(worker, 0.1)
    return client


def _answer(worker: Worker, client: socket.socket) -> bytes:
    _spin(worker)
    return client.recv(65536)


def test_a_head_sent_slowly_takes_no_thread_until_it_is_whole(worker):
    client = _connect(worker)

    client.sendall(HEAD[:20])
    _spin(worker)

    assert (len(worker.heads), len(worker.fast), worker.tpool.started) == (1, 0, 0)
    client.sendall(HEAD[20:])
    assert _answer(worker, client).startswith(b"HTTP/1.1 200 OK")


def test_the_next_head_on_a_kept_alive_connection_is_read_by_the_poller(worker):
    client = _connect(worker)
    client.sendall(HEAD)
    assert _answer(worker, client).endswith(b"hello")

    client.sendall(HEAD[:20])
    _spin(worker)

    assert (len(worker.heads), len(worker.fast)) == (1, 0)
    client.sendall(HEAD[20:])
    assert _answer(worker, client).endswith(b"hello")


def test_a_head_not_whole_in_time_is_answered_408(worker, monkeypatch):
    monkeypatch.setattr(worker_module, "HEAD_SECONDS", 0.2)
    client = _connect(worker)
    client.sendall(HEAD[:20])

    answer = _answer(worker, client)

    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    assert (len(worker.heads), worker.nr_conns) == (0, 0)


def test_a_head_larger_than_the_limit_is_answered_431(worker):
    client = _connect(worker)

    client.sendall(b"GET / HTTP/1.1\r\nX-Large: " + b"x" * worker_module.HEAD_LIMIT)

    assert _answer(worker, client).startswith(b"HTTP/1.1 431")
    assert worker.tpool.started == 0


@pytest.fixture
def answering(worker) -> threading.Event:
    """Set to let the worker's application answer."""
    answer = threading.Event()

    def waiting(environ, start_response):
        answer.wait(ANSWER_SECONDS)
        return _hello(environ, start_response)

    worker.wsgi = waiting
    return answer


def test_a_worker_stops_accepting_while_it_runs_as_many_requests_as_it_may(worker, answering):
    clients = [_connect(worker), _connect(worker)]
    for client in clients:
        client.sendall(HEAD)
    _spin(worker)

    assert not worker._accepting
    answering.set()
    _spin(worker)
    assert worker._accepting


def test_a_request_beyond_those_a_worker_may_run_waits_without_a_thread(worker, answering):
    clients = [_connect(worker), _connect(worker), _connect(worker)]
    for client in clients:
        client.sendall(HEAD)
    _spin(worker)

    assert (len(worker.fast), len(worker.parked), worker.tpool.started) == (2, 1, 2)
    answering.set()
    assert all(_answer(worker, client).endswith(b"hello") for client in clients)


def _lane() -> SlowLane:
    return SlowLane(1, on_enter=lambda client: None)


def _client_socket(**attributes) -> tuple[ClientSocket, socket.socket]:
    """A blocking ClientSocket at the start of a request, and its peer."""
    ours, peer = socket.socketpair()
    sock = ClientSocket(fileno=ours.detach())
    sock.lane = _lane()
    sock.idle_seconds = ANSWER_SECONDS
    for name, value in attributes.items():
        setattr(sock, name, value)
    sock.begin()
    return sock, peer


@pytest.fixture
def released(monkeypatch) -> list[int]:
    """The threads that gave up their database connections, in order."""
    threads: list[int] = []
    monkeypatch.setattr(
        worker_module, "release_database_connections", lambda: threads.append(threading.get_ident())
    )
    return threads


def test_a_client_slower_than_the_patience_costs_its_thread_the_database_connections(released):
    sock, peer = _client_socket()
    threading.Timer(2 * worker_module.PATIENCE_SECONDS, peer.sendall, [b"late"]).start()

    assert sock.recv(10) == b"late"
    assert released == [threading.get_ident()]
    assert sock.slow


def test_a_client_ready_at_once_keeps_the_database_connections(released):
    sock, peer = _client_socket()
    peer.sendall(b"ready")

    assert sock.recv(10) == b"ready"
    assert (released, sock.slow) == ([], False)


def test_a_silent_client_is_cut_off_after_its_idle_seconds(released):
    sock, _peer = _client_socket(idle_seconds=0.1)

    with pytest.raises(TimeoutError):
        sock.recv(10)


def _slow_in(lane: SlowLane, *, seconds: float, moved: int) -> tuple[ClientSocket, socket.socket]:
    """A client in `lane`, slow for `seconds`, in which it moved `moved` bytes."""
    sock, peer = _client_socket(lane=lane)
    assert lane.enter(sock)
    sock.in_lane, sock.slow_since, sock.moved = True, time.monotonic() - seconds, moved
    return sock, peer


def _turning_slow(lane: SlowLane) -> tuple[ClientSocket, socket.socket]:
    """A client of `lane` that sends nothing: its first wait makes it slow."""
    return _client_socket(lane=lane)


def test_a_slow_client_finding_a_full_lane_of_clients_moving_fast_enough_is_cut_off(released):
    lane = _lane()
    _slow_in(lane, seconds=3, moved=10 * worker_module.LOW_RATE)
    sock, _peer = _turning_slow(lane)

    with pytest.raises(ConnectionResetError):
        sock.recv(10)


def test_a_slow_client_keeps_its_place_for_its_grace_seconds(released):
    lane = _lane()
    _slow_in(lane, seconds=0, moved=0)
    sock, _peer = _turning_slow(lane)

    with pytest.raises(ConnectionResetError):
        sock.recv(10)


def test_a_newcomer_takes_the_place_of_the_slowest_client_moving_too_little(released):
    lane = _lane()
    lagging, _peer = _slow_in(lane, seconds=3, moved=10)
    sock, peer = _turning_slow(lane)
    threading.Timer(2 * worker_module.PATIENCE_SECONDS, peer.sendall, [b"late"]).start()

    assert sock.recv(10) == b"late"
    assert lane.clients == {sock}
    assert lagging.recv(10) == b""


def test_a_slow_reader_gets_every_byte_sent(released):
    sock, peer = _client_socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = os.urandom(1024 * 1024)
    received = bytearray()

    def read_slowly():
        while piece := peer.recv(65536):
            received.extend(piece)
            time.sleep(0.001)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    sock.sendall(data)
    sock.close()
    reader.join(ANSWER_SECONDS)

    assert bytes(received) == data


def test_the_most_recently_idle_thread_takes_the_next_job():
    pool = ThreadPool(4)
    everyone_busy = threading.Barrier(5)
    for _ in range(4):
        pool.submit(everyone_busy.wait)
    everyone_busy.wait()
    time.sleep(0.05)

    threads = {pool.submit(threading.get_ident).result() for _ in range(20)}

    assert len(threads) == 1
    pool.shutdown()


def test_a_pool_starts_no_more_threads_than_its_size():
    pool = ThreadPool(2)

    results = [pool.submit(time.sleep, 0.01) for _ in range(10)]

    assert [future.result() for future in results] == [None] * 10
    assert pool.started == 2
    pool.shutdown()


def test_idle_threads_below_the_most_recent_give_up_their_database_connections(
    released, monkeypatch
):
    monkeypatch.setattr(worker_module, "IDLE_CHECK_SECONDS", 0.05)
    monkeypatch.setattr(worker_module, "KEPT_CONNECTIONS", 1)
    pool = ThreadPool(3)
    all_running = threading.Barrier(3)
    endings = [threading.Event() for _ in range(3)]

    def job(ending: threading.Event) -> int:
        all_running.wait()
        ending.wait()
        return threading.get_ident()

    jobs = [pool.submit(job, ending) for ending in endings]
    for count, (ending, running) in enumerate(zip(endings, jobs, strict=True), start=1):
        ending.set()
        running.result()
        while len(pool.idle) < count:
            time.sleep(0.001)

    time.sleep(0.3)

    assert sorted(released) == sorted(running.result() for running in jobs[:2])
    pool.shutdown()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    bool(settings.MONGO_URL),
    reason="MongoDB's client is one pool per process: a thread holds no connection to release",
)
def test_releasing_closes_the_threads_open_database_connections():
    connection.ensure_connection()

    release_database_connections()

    assert connection.connection is None


@pytest.mark.django_db
def test_releasing_keeps_a_connection_inside_a_transaction():
    connection.ensure_connection()

    release_database_connections()

    assert connection.connection is not None


@pytest.mark.parametrize(
    ("setting", "value"), [("http_protocols", "h2,h1"), ("certfile", "/etc/lucid/cert.pem")]
)
def test_the_worker_refuses_to_serve_anything_but_plain_http_1(setting, value):
    cfg = Config()
    cfg.set(setting, value)

    with pytest.raises(RuntimeError, match="plain HTTP/1.1"):
        Worker.check_config(cfg, Logger(cfg))
