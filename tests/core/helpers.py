"""What the tests of the ground share."""

from django.core.signals import request_finished
from django.db import close_old_connections
from django.http import HttpResponseBase


def response_close(response: HttpResponseBase) -> None:
    """Close as the server does, keeping the test's database connection open."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
