"""The project package as an app, for what every app shares (management commands)."""

from django.apps import AppConfig


class LucidConfig(AppConfig):
    name = "lucid"
    verbose_name = "Lucid"

    def ready(self) -> None:
        from lucid import audit  # noqa: F401 - connects the login failure receiver
