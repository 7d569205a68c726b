"""Progress of long commands: a redrawn bar on a terminal, count lines elsewhere."""

import io

from django.core.management.base import BaseCommand

from core.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_bar():
    terminal = Terminal()
    progress = Progress("verify", 4, stream=terminal)

    for _ in range(4):
        progress.advance()
    progress.finish()

    assert terminal.getvalue().count("\r") == 4
    assert terminal.getvalue().endswith("[" + "#" * 30 + "] 4/4\n")


def test_a_log_gets_count_lines_at_most_every_few_seconds_and_the_last():
    log = io.StringIO()
    progress = Progress("backup", 1000, stream=log, every=3600)

    for _ in range(1000):
        progress.advance()

    assert log.getvalue().splitlines() == ["backup: 1/1000", "backup: 1000/1000"]


def test_a_bar_on_a_commands_coloured_stderr_is_not_styled_as_an_error():
    terminal = Terminal()
    command = BaseCommand(stderr=terminal, force_color=True)
    progress = Progress("verify", 2, stream=command.stderr)

    progress.advance(2)
    progress.finish()
    command.stderr.write("failed")

    bar = "\rverify [" + "#" * 30 + "] 2/2\n"
    assert terminal.getvalue() == bar + command.style.ERROR("failed\n")
