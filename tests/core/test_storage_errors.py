"""A full disk or quota is a 507, another storage failure a 503, both with Retry-After: in the
API, and outside it (the admin, /metrics) through the URLconf's 500 handler.

Also the URLconf of the tests that need a view raising a given error.
"""

import errno
import os
import sqlite3
from collections.abc import Callable
from types import SimpleNamespace

import psycopg.errors
import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import path
from rest_framework.request import Request
from rest_framework.views import APIView

from core import db
from core.errors import StorageFull, StorageUnavailable, is_storage_full
from lucid import urls as service_urls

RAISING_URLS = __name__


def os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def raised_from(cause: BaseException, error: Exception) -> Exception:
    """`error` as `raise error from cause` leaves it, the way Django wraps a driver's errors."""
    try:
        raise error from cause
    except Exception as raised:
        return raised


def sqlite_error(statements: list[str], *, database: str = ":memory:") -> OperationalError:
    """What Django raises for the error SQLite gives on the last of `statements`."""
    with sqlite3.connect(database) as connection:
        try:
            for statement in statements:
                connection.execute(statement)
        except sqlite3.OperationalError as error:
            return raised_from(error, OperationalError(str(error)))
    raise AssertionError(f"SQLite ran {statements} without an error")


def sqlite_database_full() -> OperationalError:
    return sqlite_error(
        [
            "PRAGMA max_page_count = 2",
            "CREATE TABLE t (x BLOB)",
            "INSERT INTO t VALUES (zeroblob(100000))",
        ]
    )


def sqlite_disk_io_error() -> OperationalError:
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorname = "SQLITE_IOERR_SHMSIZE"
    return raised_from(error, OperationalError(str(error)))


def postgresql_disk_full() -> OperationalError:
    cause = psycopg.errors.DiskFull('could not extend file "base/16384/2619": No space left')
    return raised_from(cause, OperationalError(str(cause)))


def spool_full() -> StorageUnavailable:
    return raised_from(os_error(errno.ENOSPC), StorageUnavailable("Could not write the spool."))


FULL: dict[str, Callable[[], BaseException]] = {
    "no-space": lambda: os_error(errno.ENOSPC),
    "quota": lambda: os_error(errno.EDQUOT),
    "store-full": lambda: StorageFull("Could not write: No space left on device."),
    "spool-full": spool_full,
    "sqlite-full": sqlite_database_full,
    "postgresql-full": postgresql_disk_full,
}
NOT_FULL: dict[str, Callable[[], BaseException]] = {
    "forbidden": lambda: os_error(errno.EACCES),
    "store-unavailable": lambda: StorageUnavailable("Could not open the chunk store."),
    "sqlite-io-error": sqlite_disk_io_error,
    "sqlite-syntax": lambda: sqlite_error(["SELECT FROM"]),
    "unexpected": lambda: RuntimeError("an unexpected failure"),
}


def _raising_view(request, error: str):
    raise {**FULL, **NOT_FULL}[error]()


class RaisingApiView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request: Request, error: str):
        _raising_view(request, error)


urlpatterns = [
    path("api/v1/raising/<str:error>", RaisingApiView.as_view()),
    path("raising/<str:error>", _raising_view),
]
handler500 = service_urls.handler500


@pytest.mark.parametrize("error", FULL)
def test_a_full_disk_or_quota_is_storage_full(error):
    assert is_storage_full(FULL[error]())


@pytest.mark.parametrize("error", NOT_FULL)
def test_other_failures_are_not_storage_full(error):
    assert not is_storage_full(NOT_FULL[error]())


def test_a_sqlite_io_error_is_storage_full_when_its_disk_has_no_space_left(monkeypatch):
    monkeypatch.setattr(db.shutil, "disk_usage", lambda path: SimpleNamespace(free=4096))

    assert is_storage_full(sqlite_disk_io_error())


def _assert_storage_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert int(response["Retry-After"]) > 0


@pytest.mark.urls(RAISING_URLS)
@pytest.mark.parametrize("error", FULL)
@pytest.mark.parametrize("prefix", ["/api/v1", ""])
def test_a_full_disk_is_a_507_with_retry_after_in_the_api_and_outside_it(prefix, error):
    response = Client(raise_request_exception=False).get(f"{prefix}/raising/{error}")

    _assert_storage_error(response, 507, "insufficient_storage")
    assert "free disk space" in response.json()["message"].lower()


@pytest.mark.urls(RAISING_URLS)
@pytest.mark.parametrize("prefix", ["/api/v1", ""])
def test_an_unavailable_store_is_a_503_with_retry_after_and_its_reason(prefix):
    response = Client(raise_request_exception=False).get(f"{prefix}/raising/store-unavailable")

    _assert_storage_error(response, 503, "storage_unavailable")
    assert response.json()["message"] == "Could not open the chunk store."


@pytest.mark.urls(RAISING_URLS)
@pytest.mark.parametrize("error", ["sqlite-io-error", "unexpected"])
def test_other_failures_stay_a_500_without_retry_after(error):
    response = Client(raise_request_exception=False).get(f"/api/v1/raising/{error}")

    assert (response.status_code, response.json()["code"]) == (500, "server_error")
    assert "Retry-After" not in response
