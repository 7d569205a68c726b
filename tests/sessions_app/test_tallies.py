"""Tallies: merged ones change the totals as their parts would, one by one."""

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from core.counters import counters_read
from core.db import atomic
from sessions_app import tallies
from sessions_app.models import Session
from sessions_app.tallies import Tally, tally_apply, tally_merge
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db

TOTALS = ("chunk_count", "size", "compressed_size", "backlog_bytes", "processing_us")
STATUS_TOTALS = tuple(f"chunks_{status}" for status in ("received", "processing", "stored"))


def _chunk_life(*, size: int) -> list[Tally]:
    return [
        tallies.chunks_received(count=1, size=size),
        tallies.chunk_claimed(),
        tallies.chunk_stored(size=size, stored_size=size // 4, algorithm="zstd", seconds=0.02),
    ]


def _session_totals(session: Session) -> dict[str, int]:
    return dict(Session.objects.filter(pk=session.pk).values(*TOTALS, *STATUS_TOTALS).get())


def test_a_merge_sums_each_total_and_leaves_out_those_that_cancel_out():
    merged = tally_merge(
        Tally(session={"size": 5, "chunks_received": 1}, system={"a": 1, "b": 2}),
        Tally(session={"chunks_received": -1}, system={"b": 3, "c": -1}),
        Tally(),
    )

    assert merged == Tally(session={"size": 5}, system={"a": 1, "b": 5, "c": -1})


def test_a_merged_chunk_life_changes_the_totals_as_its_steps_one_by_one():
    one_by_one, merged = SessionFactory(status="recording"), SessionFactory(status="recording")
    system_before = counters_read(prefix="chunks.")

    with atomic():
        for tally in _chunk_life(size=4096):
            tally_apply(session_id=one_by_one.pk, tally=tally)
    steps = _session_totals(one_by_one)
    system_after_steps = counters_read(prefix="chunks.")
    with atomic():
        tally_apply(session_id=merged.pk, tally=tally_merge(*_chunk_life(size=4096)))

    assert _session_totals(merged) == steps
    assert steps["chunks_stored"] == 1 and steps["chunks_received"] == 0
    step_changes = {
        key: system_after_steps.get(key, 0) - system_before.get(key, 0)
        for key in system_after_steps
    }
    merged_changes = {
        key: counters_read(prefix="chunks.").get(key, 0) - system_after_steps.get(key, 0)
        for key in system_after_steps
    }
    assert merged_changes == step_changes


def test_a_session_that_does_not_match_changes_nothing():
    session = SessionFactory(status="stopped")
    before = counters_read(prefix="chunks.")

    applied = tally_apply(
        session_id=session.pk,
        tally=tallies.chunks_received(count=1, size=10),
        only_if=Q(status="recording"),
    )

    assert applied is False
    assert _session_totals(session)["chunk_count"] == 0
    assert counters_read(prefix="chunks.") == before


def test_received_data_marks_the_session_updated_at_the_moment_of_its_last_data():
    session = SessionFactory(status="recording")

    tally_apply(session_id=session.pk, tally=tallies.chunks_received(count=1, size=10))

    session.refresh_from_db()
    assert session.last_data_at is not None
    assert session.last_data_at == session.updated_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "mongodb", reason="MongoDB adds delta documents instead")
def test_a_chunk_step_updates_the_session_and_its_counters_in_one_statement_each():
    session = SessionFactory(status="recording")
    first_life, second_life = _chunk_life(size=4096), _chunk_life(size=4096)
    for tally in [*first_life, second_life[0]]:
        tally_apply(session_id=session.pk, tally=tally)

    with CaptureQueriesContext(connection) as queries:
        for tally in second_life[1:]:
            with atomic():
                tally_apply(session_id=session.pk, tally=tally)

    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    lock = ["SELECT"] if connection.features.has_select_for_update else []
    assert [sql for sql in statements if sql not in ("BEGIN", "COMMIT")] == [
        "UPDATE",  # the session
        *lock,  # its counters, in key order
        "UPDATE",  # its counters
    ] * 2
