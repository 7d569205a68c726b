"""Progress of long management commands: a bar on a terminal, counts in a log."""

import sys
import time
from typing import TextIO


class Progress:
    """Steps done of a known total: a redrawn bar on a TTY, a line every few seconds elsewhere."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None, every: float = 5):
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.every = every
        self.tty = self.stream.isatty()
        self._last = 0.0

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        now = time.monotonic()
        if self.tty or now - self._last >= self.every or self.done == self.total:
            self._last = now
            self._draw()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        if self.tty:
            width = 30
            filled = width * self.done // self.total if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
        else:
            self.stream.write(f"{self.label}: {self.done}/{self.total}\n")
        self.stream.flush()
