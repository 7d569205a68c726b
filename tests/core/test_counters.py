"""Running totals: exact after every event, in as few statements as the database allows."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from core.counters import counters_add, counters_read
from core.db import atomic
from core.models import Counter as CounterRow

pytestmark = pytest.mark.django_db(transaction=True)
sql_only = pytest.mark.skipif(
    connection.vendor == "mongodb", reason="MongoDB adds delta documents, not counter rows"
)


class Abort(Exception):
    pass


def test_each_delta_goes_to_its_own_counter_and_new_counters_start_at_zero():
    counters_add({"test.a": 1, "test.b": 1, "test.c": -5, "test.d": 1000})
    counters_add({"test.a": 1, "test.b": 2, "test.c": 5, "test.e": 7, "test.zero": 0})

    assert counters_read(prefix="test.") == {
        "test.a": 2,
        "test.b": 3,
        "test.c": 0,
        "test.d": 1000,
        "test.e": 7,
    }


def test_a_counter_first_created_in_a_rolled_back_transaction_counts_the_next_event():
    with pytest.raises(Abort), atomic():
        counters_add({"test.new": 1, "test.other": 2})
        raise Abort

    counters_add({"test.new": 1, "test.other": 2})

    assert counters_read(prefix="test.") == {"test.new": 1, "test.other": 2}


@sql_only
def test_counters_deleted_behind_the_process_back_are_created_again_with_their_delta():
    counters_add({"test.a": 1, "test.b": 2})
    CounterRow.objects.filter(key="test.b").delete()

    counters_add({"test.a": 1, "test.b": 2, "test.c": 3})

    assert counters_read(prefix="test.") == {"test.a": 2, "test.b": 2, "test.c": 3}


@sql_only
def test_an_event_on_existing_counters_is_one_update_after_a_lock_in_key_order_where_rows_lock():
    keys = {"test.e": 1, "test.d": 1, "test.c": -1, "test.b": 1000, "test.a": 7}
    counters_add(keys)

    with CaptureQueriesContext(connection) as queries, atomic():
        counters_add(keys)

    statements = [query["sql"] for query in queries.captured_queries]
    statements = [sql for sql in statements if sql.split()[0] not in ("BEGIN", "COMMIT")]
    if connection.features.has_select_for_update:
        assert len(statements) == 2
        assert "ORDER BY" in statements[0] and "FOR UPDATE" in statements[0]
    else:
        assert len(statements) == 1
    assert statements[-1].startswith("UPDATE")
    assert counters_read(prefix="test.") == {key: 2 * delta for key, delta in keys.items()}


def test_concurrent_events_on_overlapping_counters_never_deadlock_and_stay_exact():
    threads, events = 4, 25
    event_keys = [
        [f"test.{(first + event + step) % 5}" for step in range(3)]
        for first in range(threads)
        for event in range(events)
    ]

    def add_events(first: int) -> None:
        try:
            for keys in event_keys[first * events : (first + 1) * events]:
                with atomic():
                    counters_add(dict.fromkeys(keys, 1))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(add_events, first) for first in range(threads)]:
            future.result()

    assert counters_read(prefix="test.") == dict(Counter(sum(event_keys, [])))
