"""nginx as the download floor: found on this machine or installed (Debian's nginx-light), run
with a minimal configuration of its own that serves one directory over sendfile."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchmarkError
from bench.harness import progress
from bench.service import HOST, STARTUP_TIMEOUT_SECONDS, Process, Processes, start_process

NGINX_PACKAGE = "nginx-light"
INSTALL_TIMEOUT_SECONDS = 600
TEMPORARY_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class Nginx:
    """A started nginx: its port and the directory it serves."""

    port: int
    root: Path
    master: Process


def installed_nginx() -> Path | None:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    return None if found is None else Path(found)


def find_or_install_nginx() -> tuple[Path | None, str]:
    """nginx's path, installing nginx-light by apt-get if it is missing; else why not."""
    if (found := installed_nginx()) is not None:
        return found, f"found {found}"
    progress(f"nginx not found: apt-get install -y {NGINX_PACKAGE}")
    try:
        installed = subprocess.run(
            ["apt-get", "install", "-y", NGINX_PACKAGE],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"nginx is missing and apt-get install {NGINX_PACKAGE} failed: {error}"
    if installed.returncode != 0 or (found := installed_nginx()) is None:
        reason = (installed.stderr or installed.stdout).strip().splitlines()[-1:] or ["?"]
        return None, f"nginx is missing and apt-get install {NGINX_PACKAGE} failed: {reason[0]}"
    return found, f"installed {NGINX_PACKAGE}: {found}"


def nginx_configuration(directory: Path, port: int) -> str:
    """One worker, sendfile, no access log, `directory`/root served on 127.0.0.1:`port`."""
    temporary_paths = "".join(
        f"    {name}_temp_path {directory / name};\n" for name in TEMPORARY_PATHS
    )
    # As root, nginx's workers would run as nobody, who cannot enter the private scratch directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'};\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n    sendfile on;\n    tcp_nopush on;\n"
        f"    default_type application/octet-stream;\n{temporary_paths}"
        f"    server {{\n        listen {HOST}:{port};\n        root {directory / 'root'};\n"
        "    }\n}\n"
    )


def start_nginx(executable: Path, directory: Path, port: int, processes: Processes) -> Nginx:
    """nginx serving `directory`/root, appended to `processes` at once; wait until it listens."""
    (directory / "root").mkdir(parents=True)
    configuration = directory / "nginx.conf"
    configuration.write_text(nginx_configuration(directory, port))
    command = [str(executable), "-p", str(directory), "-c", str(configuration)]
    command += ["-e", str(directory / "error.log")]
    master = start_process(command, dict(os.environ), directory / "nginx.log")
    processes.append(master)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not (directory / "nginx.pid").exists():
        if master.poll() is not None or time.monotonic() > deadline:
            log = (directory / "nginx.log").read_text(errors="replace")
            raise BenchmarkError(f"nginx did not start ({master.poll()}):\n{log}")
        time.sleep(0.05)
    return Nginx(port, directory / "root", master)


def serve_file(nginx: Nginx, source: Path) -> str:
    """Put `source` in nginx's root (hard-linked, or copied across filesystems); its URL path."""
    served = nginx.root / source.name
    try:
        os.link(source, served)
    except OSError:
        shutil.copyfile(source, served)
    return f"/{served.name}"
