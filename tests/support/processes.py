"""Commands run as process groups of their own, and what /proc says about their processes."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STOP_SECONDS = 30
MANAGE_SECONDS = 60


def manage(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`manage.py <arguments>` run to its end; its output captured as text."""
    return subprocess.run(
        [str(BIN / "python"), "manage.py", *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=MANAGE_SECONDS,
    )


class ProcessGroup:
    """A command run as a process group of its own, its output appended to a log file."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], log_path: Path):
        self.name = name
        self.log_path = log_path
        self.seen: set[int] = set()
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pgid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def members(self) -> set[int]:
        """Live processes of the group or below its leader, and those seen there before."""
        self.seen |= _descendants(self.pgid) | _group_members(self.pgid)
        return _alive(self.seen)

    def stop(self, signum: int, *, seconds: float = STOP_SECONDS) -> None:
        """Signal the whole group and wait until it and every process below its leader exit."""
        members = self.members()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)
        deadline = time.monotonic() + seconds
        while _alive(members) and time.monotonic() < deadline:
            self.process.poll()
            time.sleep(0.02)
        self.process.poll()
        left = _alive(members)
        assert not left, (
            f"{self.name}: still running {seconds} s after "
            f"{signal.Signals(signum).name}: {[command_line(pid) for pid in left]}"
        )

    def kill(self) -> None:
        """SIGKILL whatever is left; for a teardown."""
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_SECONDS)

    def log(self, *, last_lines: int | None = None) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if last_lines is None:
            return text
        return "\n".join(text.splitlines()[-last_lines:])


def _stat(path: Path) -> tuple[str, int, int] | None:
    """State, parent pid and process group of a process or thread, from its `stat` file."""
    try:
        stat = path.read_text()
    except OSError:
        return None
    state, parent, group = stat[stat.rindex(")") + 2 :].split()[:3]
    return state, int(parent), int(group)


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(entry / "stat")):
            table[int(entry.name)] = stat[1:]
    return table


def _alive(pids: set[int]) -> set[int]:
    """The pids of `pids` with a thread still running (zombies hold no sockets)."""
    alive = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            tasks = (_stat(task / "stat") for task in (Path("/proc") / str(pid) / "task").iterdir())
            if any(stat and stat[0] not in "ZX" for stat in tasks):
                alive.add(pid)
    return alive


def _descendants(root: int) -> set[int]:
    """`root` and every process below it, whatever their process group or session."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in _process_table().items():
        children.setdefault(parent, []).append(pid)
    found, pending = set(), [root]
    while pending:
        pid = pending.pop()
        found.add(pid)
        pending.extend(children.get(pid, []))
    return found


def _group_members(group: int) -> set[int]:
    return {pid for pid, (_, pgid) in _process_table().items() if pgid == group}


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
