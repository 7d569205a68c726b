"""Free local ports, and waiting until what listens on them answers."""

import http.client
import socket
import time
from collections.abc import Callable, Iterable, Mapping

from tests.support.processes import ProcessGroup

HOST = "127.0.0.1"
LOG_LINES_ON_FAILURE = 200


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on now."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind((HOST, 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def health_status(port: int) -> int | None:
    """The status of GET /health on `port`; None when nothing answers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


def healthy(port: int) -> bool:
    return health_status(port) == 200


def listening(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.2).close()
    except OSError:
        return False
    return True


def wait_until_answering(
    ports: Mapping[str, int],
    *,
    seconds: float,
    watching: Iterable[ProcessGroup] = (),
    answers: Callable[[int], bool] = healthy,
) -> None:
    """Until every named port `answers`; fails as soon as a watched process group exits."""
    watching = list(watching)
    deadline = time.monotonic() + seconds
    waiting = dict(ports)
    while waiting:
        for group in watching:
            assert group.running(), (
                f"{group.name} exited with {group.process.returncode}:\n"
                f"{group.log(last_lines=LOG_LINES_ON_FAILURE)}"
            )
        waiting = {name: port for name, port in waiting.items() if not answers(port)}
        if waiting:
            assert time.monotonic() < deadline, (
                f"not answering {seconds} s after the start: {sorted(waiting)}\n"
                + "\n".join(group.log(last_lines=LOG_LINES_ON_FAILURE) for group in watching)
            )
            time.sleep(0.05)
