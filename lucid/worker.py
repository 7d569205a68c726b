"""The web roles' gunicorn worker: slow clients hold no thread while they send a request's head,
and no database connection while a thread waits on them.

gunicorn's gthread worker hands each new connection to a thread, which then waits on the client
for as long as it takes: a few clients sending their headers slowly hold every thread. Here the
worker's poller reads each request's head without blocking, and a thread takes the request once
its head is whole; a head must be whole within HEAD_SECONDS and HEAD_LIMIT bytes, or the
connection is answered 408 or 431 and closed.

A body that arrives slowly and a response read slowly still hold a thread, so the web roles run
many threads (lucid/gunicorn.conf.py), in two parts. At most FAST_THREADS requests of a worker
run at once; more wait, whole heads but no thread, for one of them to end or to turn slow. A
request whose thread has waited PATIENCE_SECONDS in all on its client is slow: it moves to the
worker's SlowLane, which has the other threads. When the lane is full, a newcomer takes the place
of the slowest client that has moved less than LOW_RATE bytes a second since it turned slow
(SLOW_GRACE_SECONDS ago at least), which is cut off; if there is none, the newcomer is cut off.
So slow clients never delay the others, hold at most the lane's threads and the bytes those
threads hold (a response's piece, a body's read buffer), and a recorder uploading over a slow
link keeps its place against clients that trickle a few bytes a second.

Threads are not what PostgreSQL counts, connections are. A slow request gives up its thread's
database connections (and again once it is done); of the idle threads, those below the
KEPT_CONNECTIONS most recently idle give theirs up within IDLE_CHECK_SECONDS, and the most
recently idle thread takes the next request. So a worker holds about FAST_THREADS +
KEPT_CONNECTIONS connections at most, whatever its thread count, but for slow requests that
use the database again at their end (an upload records its chunk).

A client that sends or reads nothing for gunicorn's `timeout` is cut off too. A worker accepts
connections only while it can run another request, leaving them to a worker that can. A closed
connection's last bytes are read away by the poller (gunicorn's thread worker blocks its loop on
it for up to 2 s).
"""

import contextlib
import errno
import io
import select
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial

from django.db import connections
from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

HEAD_END = b"\r\n\r\n"
# From the connection's opening or, on a kept-alive connection, from the next request's first byte.
HEAD_SECONDS = 20.0
HEAD_LIMIT = 64 * 1024
PATIENCE_SECONDS = 0.25
FAST_THREADS = 8
LOW_RATE = 16 * 1024
SLOW_GRACE_SECONDS = 2.0
KEPT_CONNECTIONS = 4
IDLE_CHECK_SECONDS = 1.0
# How long a closed connection's client may still send before the socket is closed, as
# gunicorn.util.close_graceful waits.
LINGER_SECONDS = 2.0
LINGER_PIECE = 64 * 1024
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def release_database_connections() -> None:
    """Close this thread's database connections that no transaction is using."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


class ClientSocket(socket.socket):
    """A client's connection whose blocking waits spare the thread's database connections, and
    end when the client is silent for `idle_seconds` or is slow with no place in the `lane`."""

    idle_seconds: float | None = None
    lane: "SlowLane"
    slow = False
    in_lane = False
    waited = 0.0
    moved = 0
    slow_since = 0.0
    moved_when_slow = 0

    def begin(self) -> None:
        """Start counting a request's waits and bytes."""
        self.waited, self.moved = 0.0, 0

    def slow_rate(self, now: float) -> float | None:
        """Bytes received and sent a second since the client turned slow; None at first."""
        if now - self.slow_since < SLOW_GRACE_SECONDS:
            return None
        return (self.moved - self.moved_when_slow) / (now - self.slow_since)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self.gettimeout() is not None:
            return super().recv(size, flags)
        self._wait(select.POLLIN)
        data = super().recv(size, flags)
        self.moved += len(data)
        return data

    def send(self, data, flags: int = 0) -> int:
        if self.gettimeout() is not None:
            return super().send(data, flags)
        while True:
            self._wait(select.POLLOUT)
            try:
                sent = super().send(data, flags | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            self.moved += sent
            return sent

    def sendall(self, data, flags: int = 0) -> None:
        if self.gettimeout() is not None:
            return super().sendall(data, flags)
        with memoryview(data) as view, view.cast("B") as pending:
            sent = 0
            while sent < len(pending):
                sent += self.send(pending[sent:], flags)

    def _wait(self, event: int) -> None:
        """Until the client is ready for `event`; once the request has waited PATIENCE_SECONDS in
        all, it is slow: it gives up the database connections and needs a place in the lane."""
        started = time.monotonic()
        if not self._ready(event, max(PATIENCE_SECONDS - self.waited, 0.0)):
            self.slow = True
            release_database_connections()
            if not self.in_lane:
                if not self.lane.enter(self):
                    raise ConnectionResetError(
                        errno.ECONNRESET, "Cut off: every place for slow clients is taken."
                    )
                self.in_lane, self.slow_since, self.moved_when_slow = True, started, self.moved
            if not self._ready(event, self.idle_seconds):
                raise TimeoutError(f"The client did nothing for {self.idle_seconds} s.")
        self.waited += time.monotonic() - started

    def _ready(self, event: int, seconds: float | None) -> bool:
        poll = select.poll()
        poll.register(self, event)
        return bool(poll.poll(None if seconds is None else seconds * 1000))


class SlowLane:
    """The slow clients a worker's threads wait on: at most `size`; when it is full, the slowest
    of those moving less than LOW_RATE is cut off for a newcomer. `on_enter` learns who entered."""

    def __init__(self, size: int, *, on_enter: Callable[[ClientSocket], None]) -> None:
        self.size = size
        self.on_enter = on_enter
        self.lock = threading.Lock()
        self.clients: set[ClientSocket] = set()

    def enter(self, client: ClientSocket) -> bool:
        """Whether `client` has a place, maybe taken from the slowest."""
        now = time.monotonic()
        with self.lock:
            if len(self.clients) >= self.size:
                rates = {other: other.slow_rate(now) for other in self.clients}
                lagging = {other: rate for other, rate in rates.items() if rate is not None}
                slowest = min(lagging, key=lagging.get, default=None)
                if slowest is None or lagging[slowest] >= LOW_RATE:
                    return False
                self.clients.remove(slowest)
                with contextlib.suppress(OSError):
                    slowest.shutdown(socket.SHUT_RDWR)
            self.clients.add(client)
        self.on_enter(client)
        return True

    def leave(self, client: ClientSocket) -> None:
        with self.lock:
            self.clients.discard(client)


class ThreadPool:
    """Threads started as needed, up to `size`; the most recently idle one takes the next job, and
    those below the KEPT_CONNECTIONS most recently idle give up their database connections."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.jobs: deque[tuple[Future, Callable, tuple]] = deque()
        self.idle: list[threading.Event] = []
        self.started = 0
        self.stopping = False

    def submit(self, function: Callable, *args) -> Future:
        future = Future()
        with self.lock:
            self.jobs.append((future, function, args))
            if self.idle:
                self.idle.pop().set()
            elif self.started < self.size:
                self.started += 1
                threading.Thread(target=self._serve, daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let each thread end once its job is done; `wait` and `cancel_futures` are not used."""
        with self.lock:
            self.stopping = True
            for wake in self.idle:
                wake.set()
            self.idle.clear()

    def _serve(self) -> None:
        wake = threading.Event()
        while job := self._next_job(wake):
            future, function, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args))
                except BaseException as error:
                    future.set_exception(error)

    def _next_job(self, wake: threading.Event) -> tuple[Future, Callable, tuple] | None:
        """The next job, waited for on top of the idle threads; None once the pool stops."""
        while True:
            with self.lock:
                if self.stopping:
                    return None
                if self.jobs:
                    return self.jobs.popleft()
                wake.clear()
                self.idle.append(wake)
            kept = True
            while not wake.wait(IDLE_CHECK_SECONDS):
                if kept and not self._among_kept(wake):
                    release_database_connections()
                    kept = False

    def _among_kept(self, wake: threading.Event) -> bool:
        """Whether the idle thread woken by `wake` is one of the KEPT_CONNECTIONS most recent."""
        with self.lock:
            return (
                wake not in self.idle or len(self.idle) - self.idle.index(wake) <= KEPT_CONNECTIONS
            )


class ClientConnection(TConn):
    """A connection whose graceful close is finished by `linger`, in the worker's poller."""

    def __init__(self, cfg, sock, client, server, *, linger: Callable[[socket.socket], None]):
        super().__init__(cfg, sock, client, server)
        self.linger = linger

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self.linger(self.sock)
        else:
            super().close()


class Worker(ThreadWorker):
    """gthread, whose poller reads request heads and whose threads spare database connections."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.heads: dict[ClientConnection, float] = {}
        self.lingering: dict[socket.socket, float] = {}
        self.fast_threads = min(FAST_THREADS, self.cfg.threads)
        self.fast: set[ClientSocket] = set()
        self.parked: deque[ClientConnection] = deque()
        self.slow_lane = SlowLane(
            max(self.cfg.threads - self.fast_threads, 1), on_enter=self._turned_slow
        )

    @classmethod
    def check_config(cls, cfg, log) -> None:
        super().check_config(cfg, log)
        if cfg.is_ssl or cfg.http_protocols != ["h1"] or cfg.protocol != "http":
            raise RuntimeError(f"{cls.__module__}.{cls.__name__} serves plain HTTP/1.1 only.")

    def get_thread_pool(self) -> ThreadPool:
        return ThreadPool(self.cfg.threads)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and len(self.fast) < self.fast_threads)

    def accept(self, listener) -> None:
        try:
            accepted, client = listener.accept()
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        sock = ClientSocket(fileno=accepted.detach())
        sock.idle_seconds = self.cfg.timeout or None
        sock.lane = self.slow_lane
        conn = ClientConnection(self.cfg, sock, client, listener.getsockname(), linger=self._linger)
        conn.parser = http.get_parser(self.cfg, sock, client)
        self.nr_conns += 1
        self.enqueue_req(conn)

    def enqueue_req(self, conn: ClientConnection) -> None:
        """Run the connection's next request if its head is whole, or park it; else read on."""
        if HEAD_END in conn.parser.unreader.buf.getvalue():
            if len(self.fast) < self.fast_threads:
                self._run(conn)
            else:
                self.parked.append(conn)
            return
        conn.sock.setblocking(False)
        self.heads[conn] = time.monotonic() + HEAD_SECONDS
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, conn))

    def handle(self, conn: ClientConnection):
        conn.sock.begin()
        try:
            return super().handle(conn)
        finally:
            if conn.sock.in_lane:
                self.slow_lane.leave(conn.sock)
            if conn.sock.slow:
                release_database_connections()
            conn.sock.slow = conn.sock.in_lane = False

    def finish_request(self, conn: ClientConnection, fs: Future) -> None:
        self._end_fast(conn.sock)
        super().finish_request(conn, fs)

    def _run(self, conn: ClientConnection) -> None:
        conn.data_ready = True
        self.fast.add(conn.sock)
        if len(self.fast) >= self.fast_threads:
            self.set_accept_enabled(False)
        super().enqueue_req(conn)

    def _turned_slow(self, client: ClientSocket) -> None:
        """From a thread: its request moved to the slow lane."""
        self.method_queue.defer(self._end_fast, client)

    def _end_fast(self, client: ClientSocket) -> None:
        """The request on `client` no longer counts among the fast: run a parked one instead."""
        if client in self.fast:
            self.fast.remove(client)
            while self.parked and len(self.fast) < self.fast_threads:
                self._run(self.parked.popleft())

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.heads and (oldest := next(iter(self.heads.items())))[1] <= now:
            conn = oldest[0]
            self._end_head(conn, REQUEST_TIMEOUT if conn.parser.unreader.buf.getvalue() else b"")
        while self.lingering and (oldest := next(iter(self.lingering.items())))[1] <= now:
            self._end_linger(oldest[0])

    def _cap_keepalive(self, deadline: float) -> None:
        """Also the heads being read: a stopping worker waits for them only as long."""
        super()._cap_keepalive(deadline)
        for conn, head_deadline in self.heads.items():
            self.heads[conn] = min(head_deadline, deadline)

    def _read_head(self, conn: ClientConnection, sock: socket.socket) -> None:
        try:
            data = sock.recv(HEAD_LIMIT)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end_head(conn, b"")
            return
        buffer = conn.parser.unreader.buf
        buffer.seek(0, io.SEEK_END)
        buffer.write(data)
        held = buffer.getvalue()
        if HEAD_END in held[-len(data) - len(HEAD_END) :]:
            self._stop_reading_head(conn)
            self.enqueue_req(conn)
        elif len(held) > HEAD_LIMIT:
            self._end_head(conn, HEAD_TOO_LARGE)

    def _stop_reading_head(self, conn: ClientConnection) -> None:
        del self.heads[conn]
        self.poller.unregister(conn.sock)

    def _end_head(self, conn: ClientConnection, answer: bytes) -> None:
        """Close a connection whose head did not come, with `answer` if there is one."""
        self._stop_reading_head(conn)
        self.nr_conns -= 1
        if answer:
            try:
                conn.sock.send(answer)
            except OSError:
                conn.close()
                return
        conn.close(graceful=True)

    def _linger(self, sock: socket.socket) -> None:
        """Send the end of the connection, then read what the client still sends for a while."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        sock.setblocking(False)
        self.lingering[sock] = time.monotonic() + LINGER_SECONDS
        self.poller.register(sock, selectors.EVENT_READ, self._drain)

    def _drain(self, sock: socket.socket) -> None:
        try:
            if sock.recv(LINGER_PIECE):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self._end_linger(sock)

    def _end_linger(self, sock: socket.socket) -> None:
        del self.lingering[sock]
        self.poller.unregister(sock)
        sock.close()
