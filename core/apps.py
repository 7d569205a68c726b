"""The ground every app shares, as an app: audit trail, counters, roles and their commands."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    # The label these models and migrations had before they moved out of the project package:
    # it keeps existing tables, migration history, permissions and admin URLs as they were.
    label = "lucid"
    verbose_name = "Lucid"

    def ready(self) -> None:
        from core import (
            audit,  # noqa: F401 - connects the login failure receiver
            checks,  # noqa: F401 - registers the encryption key check
            receivers,  # noqa: F401 - forgets cached identities when they change
        )
