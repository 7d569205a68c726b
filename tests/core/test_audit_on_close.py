"""Entries recorded for a response's close: saved once it is closed, in batches, never dropped."""

import threading
import time
from unittest import mock

import pytest
from django.db import DatabaseError
from django.http import HttpResponse
from django.test import RequestFactory

from core import audit
from core.audit import AuditMiddleware, audit_record_on_close
from core.choices import AuditAction
from core.models import AuditEntry
from tests.core.helpers import response_close

pytestmark = pytest.mark.django_db


def _served(*actions: AuditAction) -> HttpResponse:
    """The response of a request whose view recorded `actions` for its close."""

    def view(request):
        for action in actions:
            audit_record_on_close(action=action, detail={"range": ""})
        return HttpResponse(b"body")

    return AuditMiddleware(view)(RequestFactory().get("/download", REMOTE_ADDR="10.0.0.7"))


def test_an_entry_is_saved_when_its_response_is_closed_not_before():
    response = _served(AuditAction.CHUNK_DOWNLOADED)

    assert not AuditEntry.objects.exists()
    response_close(response)
    (entry,) = AuditEntry.objects.all()
    assert (entry.action, entry.actor, entry.address) == (
        "chunk_downloaded",
        "anonymous",
        "10.0.0.7",
    )


def test_outside_a_request_an_entry_is_saved_at_once():
    audit_record_on_close(action=AuditAction.MANIFEST_READ)

    assert AuditEntry.objects.get().actor == "system"


def test_a_response_without_entries_saves_nothing_when_closed(django_assert_num_queries):
    response = _served()

    with django_assert_num_queries(0):
        response_close(response)


def test_entries_the_database_refused_are_saved_with_the_next_close():
    first, second = _served(AuditAction.CHUNK_DOWNLOADED), _served(AuditAction.MANIFEST_READ)
    with mock.patch.object(AuditEntry, "save", side_effect=DatabaseError("busy")):
        response_close(first)

    response_close(second)

    assert sorted(AuditEntry.objects.values_list("action", flat=True)) == [
        "chunk_downloaded",
        "manifest_read",
    ]


@pytest.mark.django_db(transaction=True)
def test_closes_in_other_threads_meanwhile_are_saved_in_one_batch():
    responses = [_served(AuditAction.CHUNK_DOWNLOADED) for _ in range(3)]
    saving, go_on = threading.Event(), threading.Event()
    batches = []
    save, bulk_create = AuditEntry.save, AuditEntry.objects.bulk_create

    def slow_save(entry, **options):
        batches.append(1)
        saving.set()
        go_on.wait(5)
        return save(entry, **options)

    def counted_bulk_create(entries):
        batches.append(len(entries))
        return bulk_create(entries)

    with (
        mock.patch.object(AuditEntry, "save", autospec=True, side_effect=slow_save),
        mock.patch.object(AuditEntry.objects, "bulk_create", side_effect=counted_bulk_create),
    ):
        first = threading.Thread(target=responses[0].close)
        first.start()
        saving.wait(5)
        others = [threading.Thread(target=response.close) for response in responses[1:]]
        for thread in others:
            thread.start()
        deadline = time.monotonic() + 5
        while len(audit._unsaved) < len(others) and time.monotonic() < deadline:
            time.sleep(0.001)
        go_on.set()
        for thread in [first, *others]:
            thread.join(5)

    assert batches == [1, 2]
    assert AuditEntry.objects.count() == 3
