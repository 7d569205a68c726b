"""The one way our code opens transactions and defers work to commit, whatever the database."""

from collections.abc import Callable

from django.db import transaction


def atomic():
    """A transaction on the default database; nested calls become savepoints."""
    return transaction.atomic()


def on_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current transaction commits (at once outside a transaction).

    A failing callback is logged, not raised: the transaction it follows is already committed.
    """
    transaction.on_commit(callback, robust=True)
