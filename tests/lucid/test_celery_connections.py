"""A Celery worker keeps its database connection from one task to the next."""

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from lucid.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)

A_TASK_OF_A_WORKER = SimpleNamespace(request=SimpleNamespace(is_eager=False))


def test_tasks_one_after_another_share_the_connection():
    fixup = DjangoWorkerFixup(celery_app)
    connection.ensure_connection()
    opened = connection.connection

    for _ in range(3):
        fixup.on_task_prerun(sender=A_TASK_OF_A_WORKER)
        fixup.on_task_postrun(sender=A_TASK_OF_A_WORKER)

    assert connection.connection is opened
