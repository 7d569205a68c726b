"""gunicorn settings of the web roles: `api` (and `make run`) and `recorder`."""

import gc
import os
import shutil
import sys
import tempfile
import time

from lucid.env_file import env_file_load

env_file_load()
recorder = os.environ.get("LUCID_ROLE") == "recorder"
SWITCH_INTERVAL_SECONDS = 0.001
# When the master read this file; on the embedded default, work begun before died with a prior run.
service_started = time.time()

bind = f"{os.environ.get('LUCID_BIND', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
# Processes for CPU (hashing, compression when tasks run in-process), threads to overlap the
# fsyncs and network waits of uploads; recorders hold many slow uploads open at once. 8 threads
# of a worker run requests; the others wait on slow clients, without a database connection
# (lucid/worker.py), so there are many.
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "64" if recorder else "32"))
worker_class = "lucid.worker.Worker"
# Also how long a client may send or read nothing before it is cut off (lucid/worker.py). A 64 MiB
# chunk from a slow recorder link (1 Mbit/s: ~9 minutes) must not be cut off mid-body.
timeout = 600 if recorder else 120
# Files go out through the worker's client sockets too, which cut off a client gone silent.
sendfile = False
# On SIGTERM, uploads in flight get this long to finish before workers are stopped.
graceful_timeout = 60 if recorder else 30
# Request bodies are streamed by our views, never buffered by gunicorn, so there is no body
# limit here: the chunk size is enforced by the ingest service (413). Header limits stay.
limit_request_line = 8190
# Keep connections of recorders that upload chunk after chunk.
keepalive = 75 if recorder else 5
# The control socket's default path is shared by every gunicorn of the user; we don't use it.
control_socket_disable = True

# Several worker processes share their django-prometheus series through these files.
metrics_directory = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="lucid-metrics-")
)


def on_starting(server) -> None:
    shutil.rmtree(metrics_directory, ignore_errors=True)
    os.makedirs(metrics_directory, exist_ok=True)


def _closing_when_asked(application):
    """`application`, with the connection closed after a response whose request set
    CLOSE_CONNECTION: gunicorn drops a `Connection` header an application sends."""
    from core.http.bodies import CLOSE_CONNECTION

    def closing_when_asked(environ, start_response):
        def start(status, headers, exc_info=None):
            if environ.get(CLOSE_CONNECTION):
                start_response.__self__.force_close()
            return start_response(status, headers, exc_info)

        return application(environ, start)

    return closing_when_asked


def post_worker_init(worker) -> None:
    """Let the app close connections; move what it loaded out of the garbage collector's sight.

    Full collections over the whole loaded code otherwise stall every thread of the worker for
    50-100 ms now and then: the tail latency of the API. Chunk-sized buffers stay with the
    worker (core/memory.py). A thread waiting for the GIL gets it within a millisecond, not
    Python's default five: a thread that holds the database's write turn (SQLite) waits for the
    GIL at each statement, and 300 recording sessions' appends queued behind it. On the embedded
    default, one worker also runs the periodic tasks (lucid/embedded.py). Audit entries that a
    worker which died had journaled but not saved are saved now (core/audit_journal.py).
    """
    from django.db import connections

    from core.audit_journal import audit_journal_replay
    from core.memory import allocator_keep_large_buffers
    from lucid.embedded import scheduler_start

    allocator_keep_large_buffers()
    try:
        audit_journal_replay()
    except Exception:
        worker.log.exception("audit journal: replay failed; the next worker to start tries again")
    finally:
        connections.close_all()  # opened in this thread, which serves no request
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    worker.wsgi = _closing_when_asked(worker.wsgi)
    gc.collect()
    gc.freeze()
    scheduler_start(service_started=service_started)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
