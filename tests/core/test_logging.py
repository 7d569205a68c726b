"""Structured logs: one line per request and per task, JSON when asked for."""

import json
import logging

import pytest

from core.logging import JsonFormatter
from tests.chunks_app.helpers import KIB, put_chunk, random_bytes, wait_until_settled
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_request_logs_its_session_and_chunk(api_client, user, caplog):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)

    with caplog.at_level(logging.INFO, logger="lucid.request"):
        put_chunk(api_client, session, 3, random_bytes(100))

    (record,) = [r for r in caplog.records if r.name == "lucid.request"]
    assert (record.method, record.status, record.session_id, record.sequence) == (
        "PUT",
        201,
        str(session.id),
        "3",
    )
    assert (record.user, record.client) == ("operator", "127.0.0.1")
    assert record.duration_ms >= 0


def test_each_processed_chunk_logs_its_session_and_sequence(api_client, user, caplog):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)

    with caplog.at_level(logging.INFO, logger="chunks_app.services"):
        put_chunk(api_client, session, 0, random_bytes(100))
        wait_until_settled(session)

    (record,) = [r for r in caplog.records if r.name == "chunks_app.services"]
    assert (record.session_id, record.sequence, record.algorithm) == (str(session.id), 0, "none")


def test_json_formatter_writes_one_object_with_the_extra_fields():
    record = logging.LogRecord("lucid.request", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    record.session_id = "abc"
    record.sequence = 7

    line = JsonFormatter().format(record)

    assert "\n" not in line
    body = json.loads(line)
    assert body["message"] == "GET /x"
    assert body["level"] == "INFO"
    assert (body["session_id"], body["sequence"]) == ("abc", 7)
