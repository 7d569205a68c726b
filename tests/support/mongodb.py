"""The test run on MongoDB (MONGO_URL): a cheaper reset between tests, and a SecantusDB shim.

MongoDB has no rollback for Django's TestCase, so every test ends by emptying the database,
which django-mongodb-backend does collection by collection (two round trips each, some forty
collections) before Django runs post_migrate again. Here the reset empties only the collections
the test wrote to and puts back what the migrations had put in them (groups, permissions, the
beat schedule), as a rollback would: a few round trips per test instead of hundreds.
"""

import threading

from django.core.management.commands import flush
from django.db import connection
from django_mongodb_backend.compiler import SQLCompiler
from django_mongodb_backend.operations import DatabaseOperations
from pymongo import monitoring

WRITE_COMMANDS = {"insert", "update", "delete", "findAndModify"}


class WrittenCollections(monitoring.CommandListener):
    """The collections that write commands of this process reached since the last reset."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in WRITE_COMMANDS:
            with self.lock:
                self.names.add(event.command[event.command_name])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def take(self) -> set[str]:
        with self.lock:
            names, self.names = self.names, set()
        return names


written = WrittenCollections()
seeded: dict[str, list[dict]] = {}


def install() -> None:
    """Before any MongoDB client exists: watch writes, reset cheaply, and shim SecantusDB."""
    monitoring.register(written)
    DatabaseOperations.execute_sql_flush = _reset
    flush.emit_post_migrate_signal = _seeded_already
    SQLCompiler.get_project_fields = _flattened(SQLCompiler.get_project_fields)


def remember_seeded() -> None:
    """Keep what the migrations put in the test database, to put back at every reset."""
    database = connection.database
    seeded.clear()
    for name in database.list_collection_names():
        documents = list(database[name].find())
        if documents:
            seeded[name] = documents
    written.take()


def _reset(self: DatabaseOperations, tables: list[str]) -> None:
    database = self.connection.database
    for name in sorted(written.take() & set(tables)):
        database[name].delete_many({})
        if name in seeded:
            database[name].insert_many(seeded[name])
    written.take()


def _seeded_already(*args, **kwargs) -> None:
    """What post_migrate would create again after a reset, the reset has put back."""


def _flattened(get_project_fields):
    """SecantusDB 0.7.0b3 reads a nested $project spec ({a: {b: 1}}) as a literal value, where
    MongoDB reads it as including a.b: `values_list` across a foreign key returned 1. The same
    projection in dotted paths means the same to MongoDB and works on both."""

    def flat(fields: dict) -> dict:
        result = {}
        for key, value in fields.items():
            if isinstance(value, dict) and value and not any(k.startswith("$") for k in value):
                result.update({f"{key}.{inner}": v for inner, v in flat(value).items()})
            else:
                result[key] = value
        return result

    def get_flat_project_fields(self, *args, **kwargs):
        return flat(get_project_fields(self, *args, **kwargs))

    return get_flat_project_fields
