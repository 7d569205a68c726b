"""Running totals in the database, changed inside the transaction of the event they count.

Reading them is one small query however many rows they count; every process (gunicorn
workers, Celery workers, other machines) sees the same exact values. Writers lock the rows they
change in key order, after the session row of their event, so that they never deadlock.
"""

from collections.abc import Iterable, Mapping

from django.db.models import BigIntegerField, Case, F, Value, When

from core.db import atomic
from core.models import Counter

_known_keys: set[str] = set()


def counters_add(deltas: Mapping[str, int]) -> None:
    """Add each delta to its counter; a counter not seen before starts at zero."""
    keys = sorted(key for key, delta in deltas.items() if delta)
    if not keys:
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
    with atomic():
        for key in sorted(values):
            Counter.objects.update_or_create(key=key, defaults={"value": values[key]})


def counters_read(keys: Iterable[str] | None = None, *, prefix: str = "") -> dict[str, int]:
    rows = Counter.objects.all()
    if keys is not None:
        rows = rows.filter(key__in=list(keys))
    if prefix:
        rows = rows.filter(key__startswith=prefix)
    return dict(rows.values_list("key", "value"))


def _create_missing(keys: list[str], *, known: set[str]) -> None:
    unknown = [key for key in keys if key not in known]
    if unknown:
        Counter.objects.bulk_create([Counter(key=key) for key in unknown], ignore_conflicts=True)
        _known_keys.update(unknown)


def _lock(keys: list[str]) -> list[str]:
    rows = Counter.objects.filter(key__in=keys).order_by("key").select_for_update()
    return list(rows.values_list("key", flat=True))
