"""GET /metrics: valid Prometheus text with django-prometheus' series and exact `lucid_*` ones."""

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from tests.chunks_app.helpers import (
    KIB,
    post_stream,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_parse_and_include_framework_series(anonymous_client):
    samples = scrape(anonymous_client)

    names = {name for name, _ in samples}
    assert any(name.startswith("django_http_requests") for name in names)
    assert "lucid_bytes_received_total" in names
    assert "lucid_pipeline_backlog_bytes" in names


def test_bytes_received_move_by_the_exact_bytes_uploaded(anonymous_client, api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    before = scrape(anonymous_client)

    put_chunk(api_client, session, 0, random_bytes(1000))
    put_chunk(api_client, session, 1, screen_like(2345))
    post_stream_session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    post_stream(api_client, post_stream_session, random_bytes(64 * KIB + 10))
    wait_until_settled(session)
    wait_until_settled(post_stream_session)
    after = scrape(anonymous_client)

    received = ("lucid_bytes_received_total", ())
    assert after[received] - before[received] == 1000 + 2345 + 64 * KIB


def test_bytes_stored_move_by_the_stored_bytes_of_each_codec(anonymous_client, api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    before = scrape(anonymous_client)

    put_chunk(api_client, session, 0, random_bytes(1000))
    put_chunk(api_client, session, 1, screen_like(50_000))
    chunks = wait_until_settled(session)
    after = scrape(anonymous_client)

    for codec in ("zstd", "none"):
        key = ("lucid_bytes_stored_total", (("codec", codec),))
        expected = sum(c.compressed_size for c in chunks if c.algorithm == codec)
        assert after[key] - before[key] == expected
    count = ("lucid_chunk_processing_seconds_count", (("codec", "zstd"),))
    assert after[count] - before[count] == 1


def test_gauges_follow_chunk_and_session_states(anonymous_client, api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")

    put_chunk(api_client, session, 0, random_bytes(777))
    samples = scrape(anonymous_client)

    assert samples[("lucid_chunks", (("status", "received"),))] == 1
    assert samples[("lucid_sessions", (("status", "recording"),))] == 1
    assert samples[("lucid_pipeline_backlog_bytes", ())] == 777


def test_metrics_need_no_credentials(anonymous_client):
    assert anonymous_client.get("/metrics").status_code == 200


@pytest.mark.skipif(not settings.MONGO_URL, reason="needs MONGO_URL (the third run of .ci/run)")
def test_on_mongodb_command_times_and_errors_replace_the_sql_series(anonymous_client, api_client):
    from django.db import connection
    from pymongo.errors import OperationFailure

    api_client.post("/api/v1/sessions", {"name": "measured"}, format="json")
    with pytest.raises(OperationFailure):
        connection.database.command("noSuchCommand")

    samples = scrape(anonymous_client)

    assert samples[("lucid_mongodb_command_seconds_count", (("command", "insert"),))] >= 1
    assert samples[("lucid_mongodb_command_seconds_count", (("command", "find"),))] >= 1
    errors = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "lucid_mongodb_command_errors_total"
    }
    assert errors[(("command", "noSuchCommand"), ("error", "CommandNotFound"))] >= 1
    assert not any(name.startswith("django_db_") for name, _ in samples)
