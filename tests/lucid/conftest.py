"""What the monitoring files (deploy/) are checked against."""

import pytest

from tests.chunks_app.helpers import KIB, put_chunk, screen_like, wait_until_settled
from tests.factories import SessionFactory
from tests.support.promql import exposed_names


@pytest.fixture
def exposed_metric_names(transactional_db, anonymous_client, api_client, user) -> set[str]:
    """The sample names of /metrics once a chunk went through the pipeline and requests were
    answered, so that every series with labels has one."""
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    put_chunk(api_client, session, 0, screen_like(10_000))
    wait_until_settled(session)
    anonymous_client.get("/metrics")
    return exposed_names(anonymous_client.get("/metrics").content.decode())
