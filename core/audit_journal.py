"""The audit journal: entries on their way to the database, kept on disk until they are there.

An entry recorded for a response's close (`core.audit`) is written to a journal file and flushed
to disk before the response is returned, and saved in the database when the response is closed.
Each process writes files of its own under `<LUCID_STORAGE_PATH>/audit-journal`, holding an
exclusive `flock` on each while it lives. A file whose entries are all saved is emptied, or
removed once it has grown past SEGMENT_BYTES and a new one took over. A file no process holds
was left by a process that died: `audit_journal_replay` saves the entries of such files that the
database lacks, then removes them. Web workers replay when they start.
"""

import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from django.conf import settings

from core.durable import fsync_directory
from core.models import AuditEntry
from core.sizes import MIB

logger = logging.getLogger(__name__)

DIRECTORY_NAME = "audit-journal"
SUFFIX = ".jsonl"
SEGMENT_BYTES = MIB
REPLAY_BATCH = 500


def _directory() -> Path:
    return Path(settings.LUCID_STORAGE_PATH) / DIRECTORY_NAME


def _line(entry: AuditEntry) -> bytes:
    record = {
        "id": str(entry.pk),
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "address": entry.address,
        "action": entry.action,
        "session_id": str(entry.session_id) if entry.session_id else None,
        "sequence": entry.sequence,
        "detail": entry.detail,
    }
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _entry(line: bytes) -> AuditEntry:
    record = json.loads(line)
    return AuditEntry(
        id=uuid.UUID(record["id"]),
        at=datetime.fromisoformat(record["at"]),
        actor=record["actor"],
        address=record["address"],
        action=record["action"],
        session_id=uuid.UUID(record["session_id"]) if record["session_id"] else None,
        sequence=record["sequence"],
        detail=record["detail"],
    )


class _Segment:
    """One journal file this process writes, with its entries not saved yet."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # Locked under a name replay does not read, so that no replay can take it while empty.
        name = uuid.uuid4().hex
        unnamed = directory / f".{name}.new"
        self.fd = os.open(unnamed, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.path = directory / f"{name}{SUFFIX}"
        os.rename(unnamed, self.path)
        fsync_directory(directory)
        self.directory = directory
        self.size = 0
        self.unsaved: set[uuid.UUID] = set()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.size += len(data)

    def empty(self) -> None:
        os.ftruncate(self.fd, 0)
        self.size = 0

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)


class _Journal:
    """This process's journal files and which of them holds each unsaved entry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._current: _Segment | None = None
        self._holding: dict[uuid.UUID, _Segment] = {}

    def _segment(self) -> _Segment:
        if self._pid != os.getpid():  # a forked child: its parent's files stay its parent's
            self._pid, self._current, self._holding = os.getpid(), None, {}
        current, directory = self._current, _directory()
        if current is None or current.directory != directory or current.size >= SEGMENT_BYTES:
            self._current = None
            if current is not None and not current.unsaved:
                current.remove()
            current = self._current = _Segment(directory)
        return current

    def write(self, entries: list[AuditEntry]) -> None:
        data = b"".join(_line(entry) for entry in entries)
        with self._lock:
            segment = self._segment()
            segment.write(data)
            for entry in entries:
                segment.unsaved.add(entry.pk)
                self._holding[entry.pk] = segment
        # Outside the lock: the segment stays open while it holds these unsaved entries.
        os.fdatasync(segment.fd)

    def saved(self, entries: Iterable[AuditEntry]) -> None:
        with self._lock:
            for entry in entries:
                segment = self._holding.pop(entry.pk, None)
                if segment is None:
                    continue
                segment.unsaved.discard(entry.pk)
                if segment.unsaved:
                    continue
                if segment is self._current:
                    segment.empty()
                else:
                    segment.remove()


_journal = _Journal()


def audit_journal_write(entries: list[AuditEntry]) -> None:
    """Write `entries` to this process's journal and flush them to disk; OSError if it cannot."""
    _journal.write(entries)


def audit_journal_saved(entries: Iterable[AuditEntry]) -> None:
    """Forget `entries`, now saved in the database; empty or remove files left with none."""
    _journal.saved(entries)


def _entries_read(path: Path, data: bytes) -> Iterator[AuditEntry]:
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            yield _entry(line)
        except (ValueError, KeyError, TypeError):
            # A line cut short by a crash while it was written: its response was never sent.
            logger.warning("audit journal %s: line %d is not an entry, skipped", path, number)


def _missing_save(entries: list[AuditEntry]) -> int:
    saved = 0
    for start in range(0, len(entries), REPLAY_BATCH):
        batch = entries[start : start + REPLAY_BATCH]
        present = set(
            AuditEntry.objects.filter(pk__in=[entry.pk for entry in batch]).values_list(
                "pk", flat=True
            )
        )
        missing = [entry for entry in batch if entry.pk not in present]
        AuditEntry.objects.bulk_create(missing)
        saved += len(missing)
    return saved


def audit_journal_replay() -> int:
    """Save the entries of journal files that no living process holds and that the database
    lacks, then remove the files; return how many entries were saved."""
    directory = _directory()
    if not directory.is_dir():
        return 0
    saved = 0
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive and saves its entries itself
            if os.fstat(fd).st_nlink == 0:
                continue  # removed by its process meanwhile
            with open(os.dup(fd), "rb") as journal:
                data = journal.read()
            saved += _missing_save(list(_entries_read(path, data)))
            os.unlink(path)
        finally:
            os.close(fd)
        fsync_directory(directory)
    if saved:
        logger.warning("audit journal: %d entries of stopped processes saved", saved)
    return saved
