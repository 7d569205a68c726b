"""gunicorn settings for `make run`: the production server on 127.0.0.1:$PORT."""

import os
import shutil
import tempfile

bind = f"127.0.0.1:{os.environ.get('PORT', '8080')}"
# Processes for CPU (hashing, compression when tasks run in-process), threads to overlap the
# fsyncs and network waits of uploads.
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# A 64 MiB chunk from a slow recorder link must not be cut off mid-upload.
timeout = 120
# The control socket's default path is shared by every gunicorn of the user; we don't use it.
control_socket_disable = True
accesslog = "-"

# Several worker processes share their django-prometheus series through these files.
metrics_directory = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="lucid-metrics-")
)


def on_starting(server) -> None:
    shutil.rmtree(metrics_directory, ignore_errors=True)
    os.makedirs(metrics_directory, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
