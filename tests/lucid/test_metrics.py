"""GET /metrics: valid Prometheus text with django-prometheus' series and exact `lucid_*` ones."""

import os
import subprocess
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from storage_app.retention import lucid_cleanup, retention_plan
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


def stored_session(api_client, user, size: int):
    """A stopped session holding `size` bytes of incompressible chunk."""
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    put_chunk(api_client, session, 0, random_bytes(size))
    wait_until_settled(session)
    api_client.post(f"/api/v1/sessions/{session.id}/stop")
    return session


def test_storage_used_and_free_bytes_are_those_of_the_statistics(
    anonymous_client, api_client, user
):
    stored_session(api_client, user, 20_000)

    samples = scrape(anonymous_client)
    storage = api_client.get("/api/v1/sessions/statistics").json()["storage"]

    assert samples[("lucid_storage_used_bytes", ())] == storage["used_bytes"] >= 20_000
    # A filesystem's free space is read live, and other programs write to it meanwhile.
    free = samples[("lucid_storage_free_bytes", ())]
    assert free == pytest.approx(storage["free_bytes"], rel=0.01)


def test_used_ratio_is_the_share_retention_compares_with_the_watermark(
    settings, anonymous_client, api_client, user
):
    settings.LUCID_STORAGE_QUOTA_BYTES = 64_000
    settings.LUCID_DISK_HIGH_WATERMARK = 80
    stored_session(api_client, user, 20_000)
    stored_session(api_client, user, 20_000)
    stored_session(api_client, user, 20_000)

    samples = scrape(anonymous_client)

    usage = retention_plan(now=timezone.now()).usage
    assert samples[("lucid_storage_used_ratio", ())] == pytest.approx(usage.percent / 100)
    assert samples[("lucid_storage_used_ratio", ())] > 0.9
    assert samples[("lucid_storage_high_watermark_ratio", ())] == 0.8


def test_retention_removals_are_counted_by_the_policy_that_picked_them(
    settings, anonymous_client, user
):
    settings.LUCID_STORAGE_QUOTA_BYTES = 1024**4
    settings.LUCID_MAX_SESSIONS = 1
    now = timezone.now()
    for days in (40, 35, 3, 2):
        SessionFactory(owner=user, status="stopped", stopped_at=now - timedelta(days=days))
    before = scrape(anonymous_client)

    lucid_cleanup(now=now, dry_run=False)
    after = scrape(anonymous_client)

    def removed(policy: str) -> float:
        key = ("lucid_retention_removed_sessions_total", (("policy", policy),))
        return after[key] - before[key]

    assert (removed("age"), removed("count"), removed("watermark")) == (2, 1, 0)


def test_the_backup_interval_is_exposed_for_the_freshness_alert(settings, anonymous_client):
    settings.LUCID_BACKUP_INTERVAL_HOURS = 6

    samples = scrape(anonymous_client)

    assert samples[("lucid_backup_interval_seconds", ())] == 6 * 3600


def test_process_series_cover_this_process_and_its_children(anonymous_client):
    child = subprocess.Popen(["sleep", "60"])
    try:
        samples = scrape(anonymous_client)
    finally:
        child.kill()
        child.wait()

    def pids(name: str) -> set[str]:
        return {dict(labels)["pid"] for sample, labels in samples if sample == name}

    assert {str(os.getpid()), str(child.pid)} <= pids("process_cpu_seconds_total")
    assert pids("process_resident_memory_bytes") == pids("process_cpu_seconds_total")
    assert samples[("process_resident_memory_bytes", (("pid", str(os.getpid())),))] > 0
    assert [labels for name, labels in samples if name == "python_info"] != []
