"""Lucid session storage: the Django project package."""

from lucid.celery import app as celery_app

__all__ = ["celery_app"]
