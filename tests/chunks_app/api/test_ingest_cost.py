"""An upload or a stream append reads and writes its session's row no more than it must."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.chunks_app.helpers import post_stream, put_chunk, screen_like
from tests.conftest import ON_MONGODB
from tests.factories import SessionFactory


def test_an_append_that_completes_no_chunk_reads_the_session_once_and_writes_it_once(
    api_client, user
):
    session = SessionFactory(owner=user, status="recording", chunk_size=1024 * 1024)
    assert post_stream(api_client, session, screen_like(1000)).status_code == 200

    with CaptureQueriesContext(connection) as queries:
        response = post_stream(api_client, session, screen_like(2000, seed=1))

    assert response.json() == {"received": 2000, "offset": 3000, "chunks": []}
    of_session = _session_queries(queries)  # one read, one write: the owner is cached by now
    assert len(of_session) == 2, of_session
    assert not any("JOIN" in sql for sql in of_session), of_session


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(ON_MONGODB, reason="MongoDB's backend runs no statement through wrappers")
def test_an_append_that_completes_no_chunk_writes_outside_a_transaction(api_client, user):
    """Its one UPDATE is atomic by itself; a transaction around it would hold the database's
    write turn (SQLite's one writer) for a BEGIN and a COMMIT more."""
    session = SessionFactory(owner=user, status="recording", chunk_size=1024 * 1024)
    assert post_stream(api_client, session, screen_like(1000)).status_code == 200
    in_transaction = []

    def note(execute, sql, params, many, context):
        in_transaction.append(not context["connection"].get_autocommit())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        response = post_stream(api_client, session, screen_like(2000, seed=1))

    assert response.json() == {"received": 2000, "offset": 3000, "chunks": []}
    assert in_transaction, "no statement ran"
    assert not any(in_transaction), in_transaction


def _session_queries(queries) -> list[str]:
    return [query["sql"] for query in queries if "sessions_app_session" in query["sql"]]


@pytest.mark.parametrize("time_ms", [None, "1500"], ids=["plain", "with a time mark"])
def test_an_upload_stored_on_receipt_reads_the_session_with_its_pipeline_once_and_writes_once(
    api_client, user, settings, time_ms
):
    settings.LUCID_STORE_ON_RECEIPT_MAX_KB = settings.LUCID_MAX_CHUNK_SIZE_MB * 1024
    session = SessionFactory(owner=user, status="recording", chunk_size=1024 * 1024)
    assert put_chunk(api_client, session, 0, screen_like(1000)).status_code == 201
    headers = {} if time_ms is None else {"lucid_time_ms": time_ms}

    with CaptureQueriesContext(connection) as queries:
        response = put_chunk(api_client, session, 1, screen_like(2000, seed=1), **headers)

    assert response.status_code == 201
    assert response.json()["status"] == "stored"
    writes = 1 if time_ms is None else 2
    read, *written = _session_queries(queries)
    assert "pipeline_app_pipeline" in read
    assert len(written) == writes, written
