"""The transaction helper: work aborted to break a deadlock runs again, other errors do not."""

import pytest
from django.db import OperationalError

from core.counters import counters_add, counters_read
from core.db import atomic, atomic_retried, in_transaction, is_mongodb, write_alone

pytestmark = pytest.mark.django_db(transaction=True)


class DatabaseAbort(Exception):
    def __init__(self, sqlstate: str):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _failing_first(times: int, sqlstate: str):
    calls = []

    def work() -> str:
        calls.append(1)
        counters_add({"test.attempts": 1})
        if len(calls) <= times:
            error = OperationalError("aborted")
            error.__cause__ = DatabaseAbort(sqlstate)
            raise error
        return "done"

    return work, calls


def test_a_deadlock_victim_runs_again_and_only_its_last_run_counts():
    work, calls = _failing_first(1, "40P01")

    assert atomic_retried(work) == "done"

    assert len(calls) == 2
    assert counters_read(["test.attempts"]) == {"test.attempts": 1}


def test_other_database_errors_are_not_retried():
    work, calls = _failing_first(1, "23505")

    with pytest.raises(OperationalError):
        atomic_retried(work)
    assert len(calls) == 1


def test_it_gives_up_after_the_last_attempt():
    work, calls = _failing_first(5, "40001")

    with pytest.raises(OperationalError):
        atomic_retried(work, attempts=3)
    assert len(calls) == 3


def test_a_lone_write_runs_outside_a_transaction_but_on_mongodb():
    assert write_alone(in_transaction) is is_mongodb()


def test_a_lone_write_inside_a_transaction_joins_it():
    with atomic():
        assert write_alone(in_transaction) is True
