"""The verify command: clean data passes, any damage is reported with a non-zero exit."""

import io

import pytest
from django.core.management import CommandError, call_command

from chunks_app.models import Chunk
from chunks_app.storage import get_chunk_store, get_spool
from core.choices import AuditAction
from core.counters import counters_read
from core.models import AuditEntry
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    KIB,
    damage_stored,
    put_chunk,
    random_bytes,
    record_stored,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.sessions_app.test_statistics import recount_system
from tests.support.faults import DAMAGES, overwrite

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stopped_session(api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    put_chunk(api_client, session, 0, screen_like(30_000))
    put_chunk(api_client, session, 1, random_bytes(20_000))
    wait_until_settled(session)
    api_client.post(f"/api/v1/sessions/{session.id}/stop")
    return session


def _verify(*args) -> str:
    out = io.StringIO()
    call_command("verify", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_intact_data_verifies_with_exit_zero(stopped_session):
    output = _verify()

    assert "verify: 1 sessions, 2 chunks" in output
    assert "0 problems" in output


@pytest.mark.parametrize("sequence", [0, 1], ids=["zstd", "none"])
def test_a_flipped_byte_in_a_stored_chunk_is_caught(stopped_session, sequence):
    damage_stored(Chunk.objects.get(session=stopped_session, sequence=sequence), "flipped")

    with pytest.raises(CommandError, match="1 problems found"):
        _verify()


def test_damage_is_named_on_stdout(stopped_session):
    chunk = Chunk.objects.get(session=stopped_session, sequence=0)
    overwrite(get_chunk_store(), chunk.storage_key, b"garbage")
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("verify", stdout=out, stderr=io.StringIO())

    assert f"DAMAGED {stopped_session.id} chunk 0: truncated in the chunk store" in out.getvalue()


def test_a_missing_stored_file_is_caught(stopped_session):
    damage_stored(Chunk.objects.get(session=stopped_session, sequence=1), "deleted")

    with pytest.raises(CommandError):
        _verify()


def test_a_tampered_merkle_root_is_caught(stopped_session):
    Session.objects.filter(pk=stopped_session.pk).update(merkle_root="0" * 64)

    with pytest.raises(CommandError):
        _verify()


def test_a_damaged_spooled_chunk_is_caught(api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    api_client.post(f"/api/v1/sessions/{session.id}/pipeline/pause")
    put_chunk(api_client, session, 0, random_bytes(1000))
    chunk = Chunk.objects.get(session=session)
    overwrite(get_spool(), chunk.spool_key, b"x" * 1000)

    with pytest.raises(CommandError):
        _verify()


@pytest.mark.parametrize("spelling", ["--session", "--sessions"])
def test_session_option_limits_the_check(stopped_session, api_client, user, spelling):
    other = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    put_chunk(api_client, other, 0, random_bytes(100))
    wait_until_settled(other)
    damaged = Chunk.objects.get(session=other)
    overwrite(get_chunk_store(), damaged.storage_key, b"broken")

    output = _verify(spelling, str(stopped_session.id))

    assert "verify: 1 sessions, 2 chunks" in output


def test_session_option_repeated_checks_each_session(stopped_session, user):
    empty = SessionFactory(owner=user, status="stopped")
    SessionFactory(owner=user, status="stopped")

    output = _verify("--session", str(stopped_session.id), "--session", str(empty.id))

    assert "verify: 2 sessions, 2 chunks" in output


def test_unknown_session_fails_with_its_id(db):
    with pytest.raises(CommandError, match="00000000-0000-0000-0000-000000000001"):
        _verify("--session", "00000000-0000-0000-0000-000000000001")


@pytest.mark.parametrize("how", list(DAMAGES))
@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip", "none"])
def test_verify_marks_a_damaged_chunk_damaged_once(api_client, user, codec, how):
    session = record_stored(
        api_client, owner=user, codec=codec, bodies=[screen_like(30_000, seed=s) for s in (0, 1)]
    )
    chunk = Chunk.objects.get(session=session, sequence=1)
    damage_stored(chunk, how)

    for _ in range(2):
        with pytest.raises(CommandError, match="1 problems found"):
            _verify()

    chunk.refresh_from_db()
    assert chunk.status == "damaged"
    assert chunk.error.startswith(DAMAGES[how])
    entry = AuditEntry.objects.get(action=AuditAction.CHUNK_DAMAGED)
    assert (entry.actor, entry.session_id, entry.sequence) == ("command:verify", session.pk, 1)
    counters = counters_read()
    assert (counters["chunks.damaged"], counters["chunks.damaged_total"]) == (1, 1)
    by_status = recount_system()["chunks_by_status"]
    assert {status: counters.get(f"chunks.{status}", 0) for status in by_status} == by_status


def test_verify_marks_a_chunk_whose_decoded_bytes_are_not_those_received(stopped_session):
    Chunk.objects.filter(session=stopped_session, sequence=0).update(sha256="0" * 64)

    with pytest.raises(CommandError):
        _verify()

    chunk = Chunk.objects.get(session=stopped_session, sequence=0)
    assert chunk.status == "damaged"
    assert chunk.error.startswith("hash mismatch: the decoded bytes")
