"""Running totals in the database, changed inside the transaction of the event they count.

Reading them is one small query however many rows they count; every process (gunicorn
workers, Celery workers, other machines) sees the same exact values.

An event's deltas go to its counters in one UPDATE. On PostgreSQL writers lock the rows they
change first, in key order, after the session row of their event, so that they never deadlock;
SQLite has one writer at a time and needs no row locks. MongoDB has no row locks and aborts one
of two transactions that write the same document, so there an event inserts its own
`CounterDelta` instead (an insert never conflicts), reads add the deltas not yet folded, and
every few events a fold moves them into the counters in a transaction of its own.
"""

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.db import IntegrityError, connection
from django.db.models import Case, F, Field, Value, When
from django.db.models.expressions import CombinedExpression, Expression
from django.db.models.lookups import In

from core.db import atomic, atomic_retried, is_mongodb, is_transient, on_commit
from core.models import Counter, CounterDelta

FOLD_EVERY_EVENTS = 100
FOLD_BATCH = 5000

_known_keys: set[str] = set()
_events = itertools.count(1)
# Built once, not for each event.
_KEY_COLUMN = Counter._meta.get_field("key").get_col(Counter._meta.db_table)
_VALUE_FIELD = Counter._meta.get_field("value")
_KEYS_LOCKED = Counter.objects.order_by("key").select_for_update().values_list("key", flat=True)


def counters_add(deltas: Mapping[str, int]) -> None:
    """Add each delta to its counter; a counter not seen before starts at zero."""
    changes = {key: deltas[key] for key in sorted(deltas) if deltas[key]}
    if not changes:
        return
    if is_mongodb():
        _delta_add(changes)
        return
    with atomic(savepoint=False):
        if connection.features.has_select_for_update:
            _add_in_key_order(changes)
        else:
            _add_alone(changes)


def column_plus(*, field: Field, amount: int | Expression) -> CombinedExpression:
    """`F(field) + amount`, typed as `field` up front: Django need not work the type out per use."""
    if isinstance(amount, int):
        amount = Value(amount, field)
    return CombinedExpression(F(field.name), "+", amount, output_field=field)


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


def _add_in_key_order(deltas: dict[str, int]) -> None:
    """Lock the counters in key order, then add: concurrent writers never deadlock (PostgreSQL)."""
    keys = list(deltas)
    _create_missing(keys, known=_known_keys)
    if len(_lock(keys)) != len(keys):  # deleted since this process saw them
        _known_keys.clear()
        _create_missing(keys, known=set())
        _lock(keys)
    _update(deltas)


def _add_alone(deltas: dict[str, int]) -> None:
    """Add with no row locks: SQLite's one writer holds the whole database until it commits.

    So nothing changes between the UPDATE and the rows read after it: the counters missing from
    the UPDATE are exactly those to create, each with its delta.
    """
    if _update(deltas) == len(deltas):
        return
    present = set(Counter.objects.filter(key__in=list(deltas)).values_list("key", flat=True))
    Counter.objects.bulk_create(
        [Counter(key=key, value=delta) for key, delta in deltas.items() if key not in present]
    )


def _update(deltas: dict[str, int]) -> int:
    """Add `deltas` to their counters in one UPDATE; how many counters it changed.

    Keys with the same delta share one WHEN; the last delta is the ELSE, as the WHERE leaves no
    other key to it.
    """
    keys_by_delta: dict[int, list[str]] = defaultdict(list)
    for key, delta in deltas.items():
        keys_by_delta[delta].append(key)
    *others, (last_delta, _) = keys_by_delta.items()
    increment = Case(
        *(When(In(_KEY_COLUMN, keys), then=Value(delta, _VALUE_FIELD)) for delta, keys in others),
        default=Value(last_delta, _VALUE_FIELD),
        output_field=_VALUE_FIELD,
    )
    rows = Counter.objects.filter(key__in=list(deltas))
    return rows.update(value=column_plus(field=_VALUE_FIELD, amount=increment))


def _create_missing(keys: list[str], *, known: set[str]) -> None:
    unknown = [key for key in keys if key not in known]
    if unknown:
        Counter.objects.bulk_create([Counter(key=key) for key in unknown], ignore_conflicts=True)
        on_commit(lambda: _known_keys.update(unknown))


def _lock(keys: list[str]) -> list[str]:
    return list(_KEYS_LOCKED.filter(key__in=keys))
