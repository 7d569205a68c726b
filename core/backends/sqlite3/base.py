"""SQLite whose writers wait their turn in a queue instead of in SQLite's busy handler.

SQLite lets one transaction write at a time. A writer that finds the database locked sleeps in
SQLite's busy handler, in growing steps (1, 2, 5, 10 ... 100 ms) that ignore when the lock is
released: under many concurrent uploads the database is idle while writers sleep, and an
acknowledgement now and then waits hundreds of milliseconds. Here a transaction first takes a
thread lock of its process, then an exclusive `flock` on a file beside the database, shared by
every process of the service: the kernel hands it on the moment it is released. Waiting for
either ends after the connection's `timeout`, with the "database is locked" error SQLite itself
would raise. A statement that writes outside a transaction (an UPDATE in autocommit, which
SQLite commits by itself) waits for its turn the same way and holds it only while it runs.

It is django-prometheus' SQLite backend (queries, errors and connections counted), whose cursor
class is built once per connection instead of once per cursor.
"""

import fcntl
import os
import re
import threading
import time

from django.db import OperationalError
from django.utils.functional import cached_property
from django_prometheus.db.backends.sqlite3 import base
from django_prometheus.db.common import ExportingCursorWrapper

POLL_SECONDS = 0.0005
_writers = threading.Lock()
_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def _write_alone_queued(execute, sql, params, many, context):
    """Run a statement that writes outside a transaction in the writers' turn."""
    connection = context["connection"]
    if not connection.get_autocommit() or not _WRITES.match(sql):
        return execute(sql, params, many, context)
    connection._writer_turn_take()
    try:
        return execute(sql, params, many, context)
    finally:
        connection._writer_turn_end()


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(_write_alone_queued)

    @cached_property
    def _cursor_class(self) -> type:
        return ExportingCursorWrapper(self.CURSOR_CLASS, self.alias, self.vendor)

    def create_cursor(self, name=None):
        return self.connection.cursor(factory=self._cursor_class)

    def _start_transaction_under_autocommit(self) -> None:
        self._writer_turn_take()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._writer_turn_end()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._writer_turn_end()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._writer_turn_end()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._writer_turn_end()

    def _writer_turn_take(self) -> None:
        """Wait, at most the connection's timeout, until no other transaction writes."""
        if self.is_in_memory_db():
            return
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        deadline = time.monotonic() + timeout
        if not _writers.acquire(timeout=timeout):
            raise OperationalError("database is locked")
        try:
            fd = os.open(f"{self.settings_dict['NAME']}.writers", os.O_RDWR | os.O_CREAT, 0o600)
        except BaseException:
            _writers.release()
            raise
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    _writers.release()
                    raise OperationalError("database is locked") from None
                time.sleep(POLL_SECONDS)
        self._writer_fd = fd

    def _writer_turn_end(self) -> None:
        fd = getattr(self, "_writer_fd", None)
        if fd is None:
            return
        self._writer_fd = None
        os.close(fd)
        _writers.release()
