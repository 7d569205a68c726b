"""What a chunk download costs the database: its reads, and its audit entry saved at close."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from core.models import AuditEntry
from tests.chunks_app.helpers import CHUNK_SIZE, body_of, download, put_chunk, random_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer_client(user) -> APIClient:
    """A client that authenticates every request as a recorder does: with an access token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


@pytest.fixture
def uploaded(api_client, recording) -> bytes:
    content = random_bytes(CHUNK_SIZE)
    assert put_chunk(api_client, recording, 0, content).status_code == 201
    return content


def test_a_chunk_download_reads_the_chunk_then_inserts_its_entry(
    bearer_client, recording, uploaded, django_assert_num_queries
):
    download(bearer_client, recording, 0)  # the caller and the session's owner are cached now

    with django_assert_num_queries(2) as captured:
        response = download(bearer_client, recording, 0)

    assert body_of(response) == uploaded
    tables = ["chunks_app_chunk", "lucid_auditentry"]
    for table, query in zip(tables, captured, strict=True):
        assert table in query["sql"]


def test_a_chunk_download_is_sent_whole_and_audited_once_closed(bearer_client, recording, uploaded):
    response = download(bearer_client, recording, 0, range="bytes=0-99")

    assert not response.streaming
    assert response.content == uploaded[:100]
    (entry,) = AuditEntry.objects.filter(action="chunk_downloaded")
    assert (entry.actor, entry.sequence, entry.detail) == ("operator", 0, {"range": "bytes=0-99"})
