"""SQLite's writers wait their turn in a queue shared by threads and processes (the embedded
default's backend, core.backends.sqlite3)."""

import subprocess
import sys
import threading

import pytest
from django.db import OperationalError, connection, connections

from core.counters import counters_add, counters_read
from core.db import atomic
from core.models import Counter

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="the queue is the embedded SQLite's own"
    ),
]

HOLD_SCRIPT = """
import fcntl, sys
with open(sys.argv[1], "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
"""


def _lock_path() -> str:
    return f"{connection.settings_dict['NAME']}.writers"


def test_a_writer_waits_for_the_transaction_of_another_thread_then_writes():
    events = []
    writing = threading.Event()
    finish = threading.Event()

    def hold() -> None:
        with atomic():
            counters_add({"test.queue": 1})
            writing.set()
            finish.wait(10)
            events.append("first committed")
        connections.close_all()

    def follow() -> None:
        with atomic():
            events.append("second began")
            counters_add({"test.queue": 1})
        connections.close_all()

    first = threading.Thread(target=hold)
    first.start()
    assert writing.wait(10)
    second = threading.Thread(target=follow)
    second.start()
    second.join(0.3)
    assert second.is_alive(), "the second writer began while the first one wrote"
    finish.set()
    first.join(10)
    second.join(10)

    assert events == ["first committed", "second began"]
    assert counters_read(["test.queue"]) == {"test.queue": 2}


def test_a_writer_of_another_process_holds_the_turn_until_the_timeout(monkeypatch):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.3)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, _lock_path()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OperationalError, match="database is locked"), atomic():
            counters_add({"test.queue": 1})
    finally:
        holder.communicate("")

    with atomic():
        counters_add({"test.queue": 1})
    assert counters_read(["test.queue"]) == {"test.queue": 1}


class _TurnHeldElsewhere:
    """The writers' turn held by another process until the block ends."""

    def __enter__(self) -> None:
        self.holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_SCRIPT, _lock_path()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.holder.stdout.readline().strip() == "held"

    def __exit__(self, *exception: object) -> None:
        self.holder.communicate("")


def test_a_write_outside_a_transaction_waits_for_the_turn_too(monkeypatch):
    Counter.objects.create(key="test.alone", value=1)
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.3)

    with _TurnHeldElsewhere(), pytest.raises(OperationalError, match="database is locked"):
        Counter.objects.filter(key="test.alone").update(value=2)

    assert Counter.objects.filter(key="test.alone").update(value=3) == 1
    assert counters_read(["test.alone"]) == {"test.alone": 3}


def test_a_read_outside_a_transaction_does_not_wait_for_the_turn(monkeypatch):
    Counter.objects.create(key="test.alone", value=1)
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.3)

    with _TurnHeldElsewhere():
        assert counters_read(["test.alone"]) == {"test.alone": 1}


def test_its_queries_are_counted_as_django_prometheus_counts_them():
    from django_prometheus.db import execute_total

    counted = execute_total.labels("default", "sqlite")
    before = counted._value.get()

    counters_read(["test.queue"])

    assert counted._value.get() == before + 1
