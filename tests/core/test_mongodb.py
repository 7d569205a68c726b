"""MongoDB's own ways, with real concurrent transactions: conflicts run again, totals stay exact.

Only with MONGO_URL (the third run of .ci/run): SQL databases lock rows instead, and keep their
totals in the counter rows directly.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import F

from core.counters import counters_add, counters_fold, counters_read
from core.db import atomic, atomic_retried, lock_rows
from core.models import Counter, CounterDelta
from sessions_app.models import Session
from tests.factories import SessionFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.MONGO_URL, reason="needs MONGO_URL (the third run of .ci/run)"),
]


class SessionHolder(threading.Thread):
    """Another connection's transaction that has written the session (renamed it `held`) and
    stays open until released."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.holding, self.released = threading.Event(), threading.Event()

    def run(self) -> None:
        try:
            with atomic():
                lock_rows(Session.objects.filter(pk=self.session.pk), name="held").first()
                self.holding.set()
                self.released.wait(30)
        finally:
            connections.close_all()

    def __enter__(self) -> "SessionHolder":
        self.start()
        assert self.holding.wait(10)
        return self

    def release(self) -> None:
        self.released.set()
        self.join(10)

    def __exit__(self, *exc_info) -> None:
        self.release()


def test_a_transaction_aborted_by_a_write_conflict_runs_again_and_only_its_last_run_counts():
    session = SessionFactory(status="recording")
    calls = []

    def work() -> None:
        calls.append(1)
        if len(calls) == 2:
            holder.release()
        counters_add({"test.attempts": 1})
        Session.objects.filter(pk=session.pk).update(chunk_count=F("chunk_count") + 1)

    with SessionHolder(session) as holder:
        atomic_retried(work)

    assert len(calls) == 2, "the first run met the holder's write and was aborted"
    session.refresh_from_db()
    assert (session.name, session.chunk_count) == ("held", 1)
    assert counters_read(["test.attempts"]) == {"test.attempts": 1}


def test_totals_stay_exact_under_concurrent_events_and_folds():
    threads, events = 4, 40

    def add_events() -> None:
        try:
            for _ in range(events):
                atomic_retried(lambda: counters_add({"test.events": 1, "test.bytes": 10}))
                counters_fold()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(add_events) for _ in range(threads)]:
            future.result()

    expected = {"test.events": threads * events, "test.bytes": threads * events * 10}
    assert counters_read(["test.events", "test.bytes"]) == expected
    while counters_fold():
        pass
    assert not CounterDelta.objects.exists()
    assert dict(Counter.objects.filter(key__startswith="test.").values_list("key", "value")) == (
        expected
    )


def test_an_event_adds_a_delta_document_and_changes_no_counter_in_its_transaction():
    atomic_retried(lambda: counters_add({"test.one": 1, "test.zero": 0}))

    assert list(CounterDelta.objects.values_list("deltas", flat=True)) == [{"test.one": 1}]
    assert not Counter.objects.filter(key="test.one").exists()
    assert counters_read(prefix="test.") == {"test.one": 1}


def test_a_transaction_that_raises_writes_nothing_and_leaves_no_session_open():
    with pytest.raises(RuntimeError), atomic():
        Counter.objects.create(key="test.rolled-back")
        raise RuntimeError

    assert connection.session is None
    assert not Counter.objects.filter(key="test.rolled-back").exists()


def test_a_change_that_conflicts_past_every_retry_answers_503_database_busy(api_client, user):
    session = SessionFactory(owner=user, status="recording")

    with SessionHolder(session):
        response = api_client.patch(
            f"/api/v1/sessions/{session.pk}", {"name": "renamed"}, format="json"
        )

    assert response.status_code == 503
    assert response.json()["code"] == "database_busy"
    assert response["Retry-After"] == "1"
    session.refresh_from_db()
    assert session.name == "held"
