"""Running totals in the database, changed inside the transaction of the event they count.

Reading them is one small query however many rows they count; every process (gunicorn
workers, Celery workers, other machines) sees the same exact values.
"""

from collections.abc import Iterable, Mapping

from django.db.models import BigIntegerField, Case, F, Value, When

from lucid.db import atomic
from lucid.models import Counter

_known_keys: set[str] = set()


class _MissingRows(Exception):
    pass


def counters_add(deltas: Mapping[str, int]) -> None:
    """Add each delta to its counter; a counter not seen before starts at zero."""
    deltas = {key: delta for key, delta in deltas.items() if delta}
    if not deltas:
        return
    try:
        with atomic():
            _create_missing(deltas, known=_known_keys)
            if _add(deltas) != len(deltas):
                raise _MissingRows
    except _MissingRows:
        _known_keys.clear()
        _create_missing(deltas, known=set())
        _add(deltas)


def counters_read(keys: Iterable[str] | None = None, *, prefix: str = "") -> dict[str, int]:
    rows = Counter.objects.all()
    if keys is not None:
        rows = rows.filter(key__in=list(keys))
    if prefix:
        rows = rows.filter(key__startswith=prefix)
    return dict(rows.values_list("key", "value"))


def _create_missing(deltas: Mapping[str, int], *, known: set[str]) -> None:
    unknown = set(deltas) - known
    if unknown:
        Counter.objects.bulk_create([Counter(key=key) for key in unknown], ignore_conflicts=True)
        _known_keys.update(unknown)


def _add(deltas: Mapping[str, int]) -> int:
    increment = Case(
        *(When(key=key, then=Value(delta)) for key, delta in deltas.items()),
        default=Value(0),
        output_field=BigIntegerField(),
    )
    return Counter.objects.filter(key__in=list(deltas)).update(value=F("value") + increment)
