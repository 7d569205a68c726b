"""The storage role's work: retention, cleanup, backup, restore and verification."""

from django.apps import AppConfig


class StorageAppConfig(AppConfig):
    name = "storage_app"
    verbose_name = "Storage operations"
