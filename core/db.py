"""The one way our code opens transactions and defers work to commit, whatever the database."""

import logging
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import QuerySet

from core.sizes import MIB

T = TypeVar("T")
logger = logging.getLogger(__name__)


def is_mongodb() -> bool:
    """Whether the metadata lives in MongoDB (MONGO_URL) rather than a SQL database."""
    return connection.vendor == "mongodb"


def atomic(*, savepoint: bool = True):
    """A transaction on the default database.

    On SQL databases nested calls become savepoints, or with `savepoint=False` join the outer
    transaction (no statements; an error in them rolls the whole transaction back). On MongoDB,
    Django's own atomic() does nothing: django-mongodb-backend's starts a multi-document
    transaction (replica sets only), and nested calls join it; no code of ours relies on an
    inner block rolling back alone.
    """
    return _mongodb_atomic() if is_mongodb() else transaction.atomic(savepoint=savepoint)


def lock_rows(rows: QuerySet, **touch: Any) -> QuerySet:
    """`rows` locked until the transaction ends; evaluate the result to take the locks.

    SQL databases: SELECT ... FOR UPDATE. MongoDB has no row locks and ignores that: there the
    rows are written at once (`touch`, the fields to set), so every other transaction that writes
    them aborts and runs again (`atomic_retried`) until this one ends.
    """
    if is_mongodb():
        rows.update(**touch)
        return rows
    return rows.select_for_update(of=("self",))


def in_transaction() -> bool:
    if is_mongodb():
        return connection.in_atomic_block_mongo
    return connection.in_atomic_block


@contextmanager
def _mongodb_atomic() -> Iterator[None]:
    """django-mongodb-backend's atomic(), which leaves its session behind when the commit fails."""
    from django_mongodb_backend.transaction import atomic as mongodb_atomic

    outermost = not connection.in_atomic_block_mongo
    try:
        with mongodb_atomic():
            yield
    except Exception:
        if outermost and connection.session is not None:
            _mongodb_session_discard()
        raise


def _mongodb_session_discard() -> None:
    session, connection.session = connection.session, None
    connection.run_on_commit = []
    try:
        if session.in_transaction:
            session.abort_transaction()
    except Exception:
        logger.warning("could not abort a failed MongoDB transaction", exc_info=True)
    finally:
        session.end_session()


def on_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current transaction commits (at once outside a transaction).

    A failing callback is logged, not raised: the transaction it follows is already committed.
    """
    transaction.on_commit(callback, robust=True)


RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
# MongoDB aborts the second of two transactions writing one document at once, instead of making
# it wait: contended documents (a session's totals) need more attempts, spaced out at random.
MONGODB_ATTEMPTS = 30
MONGODB_FIRST_BACKOFF_SECONDS = 0.002
MONGODB_MAX_BACKOFF_SECONDS = 0.1
# PostgreSQL's disk_full: "could not extend file", "could not write to file".
POSTGRESQL_DISK_FULL = "53100"
# SQLite reports some writes to a full disk as I/O errors: those are full when less is free.
SQLITE_FULL_BELOW_BYTES = MIB


def atomic_retried(work: Callable[[], T], *, attempts: int | None = None) -> T:
    """Run `work` in a transaction, again when the database aborted it for a conflict.

    Concurrent uploads and the pipeline touch the same session and index rows: PostgreSQL may
    pick one of them as a deadlock victim, MongoDB aborts one of two writers of a document; in
    both cases running it again is the cure. `work` must have no effect outside the database
    that a second run would repeat. Inside another transaction `work` joins it, and the
    outermost one is the one to run again.
    """
    if in_transaction():
        with atomic():
            return work()
    if attempts is None:
        attempts = MONGODB_ATTEMPTS if is_mongodb() else 3
    for attempt in range(attempts - 1):
        try:
            with atomic():
                return work()
        except Exception as error:
            if not is_transient(error):
                raise
            if is_mongodb():
                backoff = MONGODB_FIRST_BACKOFF_SECONDS * 2**attempt
                time.sleep(random.uniform(0, min(backoff, MONGODB_MAX_BACKOFF_SECONDS)))
    with atomic():
        return work()


def write_alone(work: Callable[[], T]) -> T:
    """Run `work`, one statement that writes (and reads, if it must), atomic by itself.

    On PostgreSQL and SQLite it runs outside a transaction: no BEGIN and COMMIT around it, and
    SQLite's one write turn is held only while the statement runs. On MongoDB it runs in a
    transaction all the same (retried as `atomic_retried` does): there a write outside one
    waits, unbounded, behind every transaction that holds its document.
    """
    if is_mongodb():
        return atomic_retried(work)
    return work()


def is_transient(error: BaseException) -> bool:
    """Whether the database aborted the transaction for a conflict, so that it may run again.

    A deadlock victim or a serialization failure on PostgreSQL; on MongoDB an error labelled
    TransientTransactionError (a write conflict), raised by the driver as is or wrapped by Django.
    """
    for cause in (error, error.__cause__):
        if getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return True
        has_label = getattr(cause, "has_error_label", None)
        if has_label is not None and has_label("TransientTransactionError"):
            return True
    return False


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
