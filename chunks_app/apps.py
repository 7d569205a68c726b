"""Chunks: ingest, codecs, the chunk store and downloads."""

from django.apps import AppConfig


class ChunksAppConfig(AppConfig):
    name = "chunks_app"
    verbose_name = "Chunks"

    def ready(self) -> None:
        from chunks_app import receivers  # noqa: F401 - connects the session receivers
