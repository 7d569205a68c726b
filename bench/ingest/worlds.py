"""Where the service under test keeps its chunks and spool: on the filesystem, or in S3 (a local
`weed mini`). Each world is a service of its own, started, measured and stopped in turn."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from bench.harness import progress
from bench.measure import process_trees_cpu_seconds
from bench.s3 import S3Server, s3_server
from bench.service import (
    Credentials,
    Processes,
    Service,
    chunk_store_path,
    start_service,
    stop_processes,
)

FILESYSTEM = "filesystem"
S3 = "s3"
STORAGES = (FILESYSTEM, S3)
S3_PREFIX = "bench"


class CpuTime(NamedTuple):
    """CPU seconds of the service's processes, and of the S3 server's (none on the filesystem)."""

    service: float
    server: float

    def __sub__(self, earlier: CpuTime) -> CpuTime:
        return CpuTime(self.service - earlier.service, self.server - earlier.server)

    def __truediv__(self, count: int) -> CpuTime:
        return CpuTime(self.service / count, self.server / count)


@dataclass(frozen=True)
class World:
    storage: str
    directory: Path
    service: Service
    s3_server: S3Server | None

    def cpu_time(self) -> CpuTime:
        """CPU time so far, read from /proc for every process of the service and the server."""
        server = 0.0 if self.s3_server is None else process_trees_cpu_seconds(self.s3_server.pids)
        return CpuTime(process_trees_cpu_seconds(self.service.pids), server)

    def stored_chunks(self, session_id: str) -> Iterator[bytes]:
        """The session's chunks as the chunk store keeps them, one at a time, in sequence order."""
        if self.s3_server is not None:
            yield from self.s3_server.objects(f"{S3_PREFIX}/chunks/{session_id}/")
            return
        for path in sorted(chunk_store_path(self.directory).joinpath(session_id).glob("[!.]*")):
            yield path.read_bytes()


@contextmanager
def world_started(
    storage: str,
    directory: Path,
    processes: Processes,
    *,
    credentials: Credentials,
    options: argparse.Namespace,
) -> Iterator[World]:
    """The service in `directory` on `storage` (and the S3 server it needs) until the block ends;
    its processes are stopped then, before the S3 server."""
    with ExitStack() as stack:
        server, environment = None, {}
        if storage == S3:
            progress(f"starting weed mini in {directory / 'weed'}")
            server = stack.enter_context(s3_server(directory / "weed"))
            environment = server.service_environment(S3_PREFIX)
        stack.callback(stop_processes, processes)
        progress(f"starting the service on {storage} in {directory}")
        service = start_service(
            directory,
            processes,
            credentials=credentials,
            port=options.port,
            workers=options.workers,
            worker_concurrency=options.worker_concurrency,
            extra_environment=environment,
        )
        yield World(storage, directory, service, server)
