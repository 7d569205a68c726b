"""Options the storage commands share, spelled the same in each."""

import uuid
from argparse import ArgumentParser


def session_option_add(parser: ArgumentParser, *, help: str) -> None:
    """`--session ID`, repeatable and taking several IDs; `--sessions`, its older spelling, too."""
    parser.add_argument(
        "--session",
        "--sessions",
        dest="sessions",
        action="extend",
        nargs="+",
        type=uuid.UUID,
        metavar="ID",
        help=f"{help} (repeatable; `--sessions` is the same option).",
    )
