"""Progress of long management commands: a bar on a terminal, counts in a log."""

import sys
import time
from collections.abc import Callable
from typing import TextIO

from django.core.management.base import OutputWrapper


def _plain(text: str) -> str:
    return text


class Progress:
    """Steps done of a known total: a redrawn bar on a TTY, a line every few seconds elsewhere."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | OutputWrapper | None = None,
        every: float = 5,
    ):
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.every = every
        self.tty = self.stream.isatty()
        self._last = float("-inf")

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        now = time.monotonic()
        if self.tty or now - self._last >= self.every or self.done == self.total:
            self._last = now
            self._draw()

    def finish(self) -> None:
        if self.tty:
            self._write("\n")

    def _draw(self) -> None:
        if self.tty:
            width = 30
            filled = width * self.done // self.total if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            self._write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
        else:
            self._write(f"{self.label}: {self.done}/{self.total}\n")

    def _write(self, text: str) -> None:
        if isinstance(self.stream, OutputWrapper):
            # A command's stderr colours what it writes as an error; a bar is no error.
            self.stream.write(text, style_func=_plain, ending="")
        else:
            self.stream.write(text)
        self.stream.flush()


ProgressFactory = Callable[[str, int], Progress | None]
"""Given a label and a total, the progress display to advance, or None to show none."""
