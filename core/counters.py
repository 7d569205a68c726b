"""Running totals in the database, changed inside the transaction of the event they count.

Reading them is one small query however many rows they count; every process (gunicorn
workers, Celery workers, other machines) sees the same exact values.

On SQL databases writers lock the rows they change in key order, after the session row of their
event, so that they never deadlock. MongoDB has no row locks and aborts one of two transactions
that write the same document, so there an event inserts its own `CounterDelta` instead (an
insert never conflicts), reads add the deltas not yet folded, and every few events a fold moves
them into the counters in a transaction of its own.
"""

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.db import IntegrityError
from django.db.models import BigIntegerField, Case, F, Value, When

from core.db import atomic, atomic_retried, is_mongodb, is_transient, on_commit
from core.models import Counter, CounterDelta

FOLD_EVERY_EVENTS = 100
FOLD_BATCH = 5000

_known_keys: set[str] = set()
_events = itertools.count(1)


def counters_add(deltas: Mapping[str, int]) -> None:
    """Add each delta to its counter; a counter not seen before starts at zero."""
    keys = sorted(key for key, delta in deltas.items() if delta)
    if not keys:
        return
    if is_mongodb():
        _delta_add({key: deltas[key] for key in keys})
        return
    with atomic():
        _create_missing(keys, known=_known_keys)
        if len(_lock(keys)) != len(keys):
            _known_keys.clear()
            _create_missing(keys, known=set())
            _lock(keys)
        increment = Case(
            *(When(key=key, then=Value(deltas[key])) for key in keys),
            default=Value(0),
            output_field=BigIntegerField(),
        )
        Counter.objects.filter(key__in=keys).update(value=F("value") + increment)


def counters_set(values: Mapping[str, int]) -> None:
    """Set each counter to its value, such as a gauge of the last backup; others stay as is."""

    def set_values() -> None:
        for key in sorted(values):
            Counter.objects.update_or_create(key=key, defaults={"value": values[key]})

    atomic_retried(set_values)


def counters_read(keys: Iterable[str] | None = None, *, prefix: str = "") -> dict[str, int]:
    keys = None if keys is None else list(keys)
    rows = Counter.objects.all()
    if keys is not None:
        rows = rows.filter(key__in=keys)
    if prefix:
        rows = rows.filter(key__startswith=prefix)
    if not is_mongodb():
        return dict(rows.values_list("key", "value"))
    with atomic():  # one snapshot: a fold moves amounts between the two collections
        totals = defaultdict(int, rows.values_list("key", "value"))
        for deltas in CounterDelta.objects.values_list("deltas", flat=True):
            for key, delta in deltas.items():
                if (keys is None or key in keys) and key.startswith(prefix):
                    totals[key] += delta
    return dict(totals)


def counters_fold() -> int:
    """Move the deltas of up to FOLD_BATCH events into the counters; how many it moved.

    One attempt: a fold that conflicts with another one leaves the deltas to the next.
    """
    try:
        return atomic_retried(_fold, attempts=1)
    except IntegrityError:  # another fold created the same counter first
        return 0
    except Exception as error:
        if not is_transient(error):
            raise
        return 0


def _fold() -> int:
    folded = list(CounterDelta.objects.order_by("pk").values_list("pk", "deltas")[:FOLD_BATCH])
    totals: dict[str, int] = defaultdict(int)
    for _, deltas in folded:
        for key, delta in deltas.items():
            totals[key] += delta
    CounterDelta.objects.filter(pk__in=[pk for pk, _ in folded]).delete()
    for key in sorted(totals):
        if not Counter.objects.filter(key=key).update(value=F("value") + totals[key]):
            Counter.objects.create(key=key, value=totals[key])
    return len(folded)


def _delta_add(deltas: dict[str, int]) -> None:
    CounterDelta.objects.create(deltas=deltas)
    if next(_events) % FOLD_EVERY_EVENTS == 0:
        on_commit(counters_fold)


def _create_missing(keys: list[str], *, known: set[str]) -> None:
    unknown = [key for key in keys if key not in known]
    if unknown:
        Counter.objects.bulk_create([Counter(key=key) for key in unknown], ignore_conflicts=True)
        _known_keys.update(unknown)


def _lock(keys: list[str]) -> list[str]:
    rows = Counter.objects.filter(key__in=keys).order_by("key").select_for_update()
    return list(rows.values_list("key", flat=True))
