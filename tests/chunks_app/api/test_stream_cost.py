"""A stream append reads and writes its session's row no more than it must."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.chunks_app.helpers import post_stream, screen_like
from tests.factories import SessionFactory


def test_an_append_that_completes_no_chunk_reads_the_session_twice_and_writes_it_once(
    api_client, user
):
    session = SessionFactory(owner=user, status="recording", chunk_size=1024 * 1024)
    assert post_stream(api_client, session, screen_like(1000)).status_code == 200

    with CaptureQueriesContext(connection) as queries:
        response = post_stream(api_client, session, screen_like(2000, seed=1))

    assert response.json() == {"received": 2000, "offset": 3000, "chunks": []}
    of_session = [query["sql"] for query in queries if "sessions_app_session" in query["sql"]]
    assert len(of_session) == 3, of_session
