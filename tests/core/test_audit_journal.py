"""Entries recorded for a response's close are on disk before the response goes out: a process
that dies before saving them leaves them in its journal, and the next replay saves them."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory

from core import audit_journal
from core.audit import AuditMiddleware, audit_record_on_close
from core.audit_journal import audit_journal_replay
from core.choices import AuditAction
from core.models import AuditEntry
from tests.core.helpers import response_close

pytestmark = pytest.mark.django_db

# A process that serves `count` downloads and dies by SIGKILL before closing their responses.
DYING_PROCESS = textwrap.dedent(
    """
    import os, signal, sys
    import django
    django.setup()
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import RequestFactory
    from core.audit import AuditMiddleware, audit_record_on_close

    settings.LUCID_STORAGE_PATH = sys.argv[1]

    def view(request):
        audit_record_on_close(action="chunk_downloaded", sequence=int(request.GET["sequence"]))
        return HttpResponse(b"body")

    for sequence in range(int(sys.argv[2])):
        AuditMiddleware(view)(RequestFactory().get(f"/download?sequence={sequence}"))
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _journal() -> Path:
    return Path(settings.LUCID_STORAGE_PATH) / audit_journal.DIRECTORY_NAME


def _journal_lines() -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(_journal().glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def _served(sequence: int) -> HttpResponse:
    def view(request):
        audit_record_on_close(action=AuditAction.CHUNK_DOWNLOADED, sequence=sequence)
        return HttpResponse(b"body")

    return AuditMiddleware(view)(RequestFactory().get("/download"))


def _die_serving(count: int) -> None:
    """Serve `count` downloads in another process that is killed before their responses close."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "lucid.settings"}
    process = subprocess.run(
        [sys.executable, "-c", DYING_PROCESS, str(settings.LUCID_STORAGE_PATH), str(count)],
        env=environment,
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()


def test_an_entry_is_on_disk_before_its_response_is_returned_and_gone_once_saved():
    response = _served(sequence=4)

    (line,) = _journal_lines()
    assert (line["action"], line["sequence"]) == ("chunk_downloaded", 4)
    assert not AuditEntry.objects.exists()
    response_close(response)
    assert str(AuditEntry.objects.get().pk) == line["id"]
    assert _journal_lines() == []


def test_entries_of_a_killed_process_are_saved_by_the_next_replay():
    _die_serving(3)
    journaled = _journal_lines()
    assert [line["sequence"] for line in journaled] == [0, 1, 2]
    assert not AuditEntry.objects.exists()

    assert audit_journal_replay() == 3

    saved = AuditEntry.objects.order_by("sequence")
    assert [str(entry.pk) for entry in saved] == [line["id"] for line in journaled]
    assert [(entry.action, entry.actor) for entry in saved] == [
        ("chunk_downloaded", "anonymous")
    ] * 3
    assert list(_journal().glob("*.jsonl")) == []
    assert audit_journal_replay() == 0


def test_a_replay_saves_only_what_the_database_lacks_and_skips_a_line_cut_short():
    _die_serving(2)
    first, second = _journal_lines()
    AuditEntry.objects.create(id=first["id"], action="chunk_downloaded", actor="anonymous")
    (path,) = _journal().glob("*.jsonl")
    with path.open("ab") as journal:
        journal.write(b'{"id":"0b5')

    assert audit_journal_replay() == 1

    assert sorted(str(pk) for pk in AuditEntry.objects.values_list("pk", flat=True)) == sorted(
        [first["id"], second["id"]]
    )


def test_a_replay_leaves_the_journal_of_a_living_process_to_it():
    response = _served(sequence=1)

    assert audit_journal_replay() == 0
    assert not AuditEntry.objects.exists()
    response_close(response)
    assert AuditEntry.objects.get().sequence == 1


def test_a_full_journal_file_is_followed_by_a_new_one_and_removed_once_saved(monkeypatch):
    monkeypatch.setattr(audit_journal, "SEGMENT_BYTES", 1)
    first = _served(sequence=1)
    second = _served(sequence=2)
    assert len(list(_journal().glob("*.jsonl"))) == 2

    response_close(first)
    response_close(second)

    assert len(list(_journal().glob("*.jsonl"))) == 1
    assert _journal_lines() == []
    assert AuditEntry.objects.count() == 2


def test_without_a_journal_the_entries_are_saved_before_the_response(settings, tmp_path):
    settings.LUCID_STORAGE_PATH = tmp_path
    (tmp_path / audit_journal.DIRECTORY_NAME).write_bytes(b"a file where the journal goes")

    response = _served(sequence=7)

    assert AuditEntry.objects.get().sequence == 7
    response_close(response)
    assert AuditEntry.objects.count() == 1
