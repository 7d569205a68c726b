"""The one way our code opens transactions and defers work to commit, whatever the database."""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.db import OperationalError, connection, transaction

from core.sizes import MIB

T = TypeVar("T")


def atomic():
    """A transaction on the default database; nested calls become savepoints."""
    return transaction.atomic()


def on_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current transaction commits (at once outside a transaction).

    A failing callback is logged, not raised: the transaction it follows is already committed.
    """
    transaction.on_commit(callback, robust=True)


RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
# PostgreSQL's disk_full: "could not extend file", "could not write to file".
POSTGRESQL_DISK_FULL = "53100"
# SQLite reports some writes to a full disk as I/O errors: those are full when less is free.
SQLITE_FULL_BELOW_BYTES = MIB


def atomic_retried(work: Callable[[], T], *, attempts: int = 3) -> T:
    """Run `work` in a transaction, again when the database aborted it to break a deadlock.

    Concurrent uploads and the pipeline touch the same session and index rows; PostgreSQL may
    pick one of them as a deadlock victim, and running it again is the cure.
    """
    for _ in range(attempts - 1):
        try:
            with atomic():
                return work()
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                raise
    with atomic():
        return work()


def is_database_full(error: BaseException) -> bool:
    """Whether `error`, a database driver's error, says the database's disk is full."""
    if getattr(error, "sqlstate", None) == POSTGRESQL_DISK_FULL:
        return True
    name = getattr(error, "sqlite_errorname", "")
    if name == "SQLITE_FULL":
        return True
    if not name.startswith("SQLITE_IOERR"):
        return False
    try:
        free = shutil.disk_usage(Path(connection.settings_dict["NAME"]).parent).free
    except OSError:
        return False
    return free < SQLITE_FULL_BELOW_BYTES
