"""The HTTP floor of an upload: gunicorn, with the service's worker class, threads and allocator,
reading each PUT's body into nothing and answering 201. What any service on gunicorn pays to
receive a chunk before it does anything with it, measured with the same client code as (b)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.harness import progress
from bench.ingest.transfer import upload_chunks
from bench.measure import process_trees_cpu_seconds
from bench.service import (
    VENV_BIN,
    Credentials,
    Processes,
    free_port,
    service_environment,
    start_process,
    stop_processes,
    wait_for_port,
)
from core.memory import allocator_keep_large_buffers
from core.sizes import MIB

READ_PIECE = MIB
WORKER_CLASS = "lucid.worker.Worker"
THREADS = "32"

# Imported by each gunicorn worker of the floor: chunk-sized buffers stay, as in the service.
allocator_keep_large_buffers()


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    body = environ["wsgi.input"]
    while body.read(READ_PIECE):
        pass
    start_response("201 Created", [("Content-Length", "0")])
    return []


def measure_receive_floor(
    chunks: list[bytes],
    workdir: Path,
    *,
    workers: int,
    clients: int,
    rounds: int,
) -> float:
    """CPU seconds per chunk of the floor's processes receiving `chunks`, median of `rounds`."""
    progress(f"HTTP receive floor: gunicorn reading {len(chunks)} chunks into nothing")
    credentials = Credentials("floor", "unused")
    environment = service_environment(
        workdir, port=free_port(0), workers=workers, credentials=credentials
    )
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [str(VENV_BIN / "gunicorn"), f"{__name__}:application", "--no-control-socket"]
    command += ["--bind", f"127.0.0.1:{environment['PORT']}", "--workers", str(workers)]
    command += ["--worker-class", WORKER_CLASS, "--threads", THREADS]
    processes: Processes = []
    try:
        server = start_process(command, environment, logs / "gunicorn.log")
        processes.append(server)
        wait_for_port(server, environment, logs)
        port = int(environment["PORT"])
        digests = [hashlib.sha256(chunk).digest() for chunk in chunks]
        upload_chunks(port, "", "floor", chunks, digests, clients=clients)  # warm-up
        spent = []
        for _ in range(rounds):
            before = process_trees_cpu_seconds([server.pid])
            upload_chunks(port, "", "floor", chunks, digests, clients=clients)
            spent.append((process_trees_cpu_seconds([server.pid]) - before) / len(chunks))
    finally:
        stop_processes(processes)
    return sorted(spent)[len(spent) // 2]
