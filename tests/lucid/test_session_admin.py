"""The sessions admin: list, session page, and actions that change state through the services."""

import os
import re
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chunks_app.models import Chunk
from chunks_app.storage import get_chunk_store
from core.choices import AuditAction, PipelineState
from core.counters import counters_read
from core.models import AuditEntry
from core.units import ratio_text, size_text
from pipeline_app.models import Pipeline
from pipeline_app.services import pipeline_pause
from sessions_app.models import Session
from storage_app.tasks import backup_task
from tests.chunks_app.helpers import (
    KIB,
    body_of,
    damage_stored,
    download,
    put_chunk,
    random_bytes,
    screen_like,
    wait_until_settled,
)
from tests.factories import SessionFactory, UserFactory, staff_member
from tests.support.faults import remains

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/sessions_app/session/"
STATE_CHANGING_ACTIONS = {
    "stop",
    "pause_pipeline",
    "resume_pipeline",
    "set_legal_hold",
    "clear_legal_hold",
    "repair_from_backup",
    "delete_selected",
}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(db) -> Client:
    return logged_in(UserFactory(username="admin-root", is_staff=True, is_superuser=True))


@pytest.fixture
def operator_client(db) -> Client:
    return logged_in(staff_member("operator"))


@pytest.fixture
def auditor_client(db) -> Client:
    return logged_in(staff_member("auditor"))


@pytest.fixture
def clients(superuser_client, operator_client, auditor_client) -> dict[str, Client]:
    return {"superuser": superuser_client, "operator": operator_client, "auditor": auditor_client}


@pytest.fixture
def recorded(api_client, user) -> Session:
    """A recording session with two stored chunks: one compressible, one not."""
    session = SessionFactory(
        owner=user, name="night shift", host="rdp-07.example.test", status="recording"
    )
    put_chunk(api_client, session, 0, screen_like(300 * KIB))
    put_chunk(api_client, session, 1, random_bytes(100 * KIB))
    wait_until_settled(session)
    session.refresh_from_db()
    return session


def run_action(client: Client, action: str, *sessions: Session, **extra):
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [s.pk for s in sessions], **extra}
    )


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


def action_names(response) -> set[str]:
    return {name for name, _ in response.context["action_form"].fields["action"].choices if name}


# --- the list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["superuser", "operator", "auditor"])
def test_the_list_shows_each_session_with_its_totals(clients, role, recorded):
    response = clients[role].get(CHANGELIST)

    assert response.status_code == 200
    body = response.content.decode()
    for text in [
        "night shift",
        "Recording",
        size_text(recorded.size),
        ratio_text(recorded.size, recorded.compressed_size),
    ]:
        assert text in body


def test_the_list_costs_the_same_queries_for_many_sessions(superuser_client):
    SessionFactory()
    superuser_client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as one:
        assert superuser_client.get(CHANGELIST).status_code == 200
    SessionFactory.create_batch(5, status="recording")

    with CaptureQueriesContext(connection) as six:
        superuser_client.get(CHANGELIST)

    assert len(six) == len(one)


def test_the_list_filters_by_status_pipeline_state_and_legal_hold(superuser_client):
    SessionFactory(name="still recording", status="recording")
    stopped = SessionFactory(name="done and held", status="stopped", legal_hold=True)
    pipeline_pause(session=stopped)

    for query in ["status__exact=stopped", "pipeline__state__exact=paused", "legal_hold__exact=1"]:
        body = superuser_client.get(f"{CHANGELIST}?{query}").content.decode()
        assert "done and held" in body
        assert "still recording" not in body


def test_the_list_marks_and_filters_a_stopped_session_with_missing_chunks(
    superuser_client, api_client, user
):
    gapped = SessionFactory(owner=user, name="with gaps", status="recording")
    for sequence in (0, 1, 2, 5):
        put_chunk(api_client, gapped, sequence, screen_like(10 * KIB))
    api_client.post(f"/api/v1/sessions/{gapped.pk}/stop")
    SessionFactory(name="gapless one", status="stopped")

    body = superuser_client.get(f"{CHANGELIST}?complete__exact=0").content.decode()
    page = superuser_client.get(f"{CHANGELIST}{gapped.pk}/change/").content.decode()

    assert "with gaps" in body and "gapless one" not in body
    assert re.search(r'<td class="field-complete_display"><img [^>]*alt="False"', body)
    assert "gapless one" in superuser_client.get(f"{CHANGELIST}?complete__exact=1").content.decode()
    assert '<div class="readonly">2: 3, 4</div>' in page


def test_the_list_searches_names_hosts_and_whole_ids(superuser_client):
    session = SessionFactory(name="finance desk", host="rdp-finance.example.test")
    SessionFactory(name="other session", host="elsewhere.example.test")

    for term in ["finance desk", "rdp-finance", str(session.pk), f" {str(session.pk).upper()} "]:
        body = superuser_client.get(CHANGELIST, {"q": term}).content.decode()
        assert "finance desk" in body
        assert "other session" not in body


def test_a_part_of_an_id_finds_nothing_on_every_database(superuser_client):
    """MongoDB has no pattern lookups on UUID fields: ids are searched whole, everywhere."""
    session = SessionFactory(name="finance desk")

    response = superuser_client.get(CHANGELIST, {"q": str(session.pk)[:8]})

    assert response.status_code == 200
    assert "finance desk" not in response.content.decode()


# --- who may do what ----------------------------------------------------------------------------


def test_an_auditor_is_offered_no_action_that_changes_state(auditor_client, recorded):
    response = auditor_client.get(CHANGELIST)

    assert action_names(response) == {"verify"}


def test_an_operator_is_offered_every_action(operator_client, recorded):
    response = operator_client.get(CHANGELIST)

    assert action_names(response) == STATE_CHANGING_ACTIONS | {"verify"}


def test_an_auditor_cannot_stop_a_session_by_posting_the_action(auditor_client, recorded):
    run_action(auditor_client, "stop", recorded)

    recorded.refresh_from_db()
    assert recorded.status == "recording"


def test_nobody_adds_a_session_in_the_admin(superuser_client):
    assert superuser_client.get(f"{CHANGELIST}add/").status_code == 403


# --- the session page ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["superuser", "operator", "auditor"])
def test_the_session_page_shows_chunks_pipeline_audit_and_downloads(clients, role, recorded):
    response = clients[role].get(f"{CHANGELIST}{recorded.pk}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    for text in [
        "night shift",
        "Recording format",
        "Pipeline",
        "Running",
        "2 stored",
        f"/api/v1/sessions/{recorded.pk}/recording",
        f"/api/v1/sessions/{recorded.pk}/manifest",
        f"/api/v1/sessions/{recorded.pk}/chunks/0/download",
        f"/api/v1/sessions/{recorded.pk}/chunks/1/download",
        "Recent audit entries",
        "Session created",
        "Session state changed",
    ]:
        assert text in body


def test_the_session_page_gives_sizes_ratios_and_the_duration_in_human_units(
    superuser_client, recorded
):
    Session.objects.filter(pk=recorded.pk).update(duration_ms=3_725_000)

    body = superuser_client.get(f"{CHANGELIST}{recorded.pk}/change/").content.decode()

    compressible = recorded.chunks.get(sequence=0)
    for text in [
        '<div class="readonly">1 h 02 min</div>',
        f'<div class="readonly">{size_text(recorded.size)}</div>',
        f'<div class="readonly">{ratio_text(recorded.size, recorded.compressed_size)}</div>',
        '<div class="readonly">1.0 MiB</div>',
        "<p>300.0 KiB</p>",
        f"<p>{ratio_text(300 * KIB, compressible.compressed_size)}</p>",
        f"all chunks in one stream</a> ({size_text(recorded.size)})",
    ]:
        assert text in body


def test_the_session_page_is_read_only_for_an_auditor(auditor_client, recorded):
    page = f"{CHANGELIST}{recorded.pk}/change/"
    response = auditor_client.get(page)

    body = response.content.decode()
    assert 'name="_save"' not in body
    assert 'name="name"' not in body
    assert "deletelink" not in body
    assert auditor_client.post(page, {"name": "renamed"}).status_code == 403
    recorded.refresh_from_db()
    assert recorded.name == "night shift"


def test_the_session_page_shows_only_the_first_chunks_of_a_long_session(
    superuser_client, api_client, user, monkeypatch
):
    monkeypatch.setattr("lucid.admin.CHUNKS_SHOWN", 2)
    session = SessionFactory(owner=user, status="recording", chunk_size=64 * KIB)
    for sequence in range(3):
        put_chunk(api_client, session, sequence, screen_like(10 * KIB, seed=sequence))
    wait_until_settled(session)

    body = superuser_client.get(f"{CHANGELIST}{session.pk}/change/").content.decode()

    assert "showing the first 2 of 3 chunks" in body
    assert f"/api/v1/sessions/{session.pk}/chunks/1/download" in body
    assert f"/api/v1/sessions/{session.pk}/chunks/2/download" not in body
    assert f"/admin/chunks_app/chunk/?session={session.pk}" in body


def test_the_download_links_work_for_an_auditor_logged_into_the_admin(auditor_client, recorded):
    response = auditor_client.get(f"/api/v1/sessions/{recorded.pk}/chunks/0/download")

    assert response.status_code == 200
    assert body_of(response) == screen_like(300 * KIB)


def test_an_operator_renames_a_session_through_the_service(operator_client):
    session = SessionFactory(name="old name")

    response = operator_client.post(
        f"{CHANGELIST}{session.pk}/change/",
        {
            "name": "new name",
            "host": session.host,
            "retention_days": "7",
            "chunks-TOTAL_FORMS": "0",
            "chunks-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.name, session.retention_days) == ("new name", 7)
    entry = AuditEntry.objects.get(action=AuditAction.SESSION_UPDATED, session_id=session.pk)
    assert entry.actor == "admin-operator"
    assert entry.detail["changed"] == {"name": "new name", "retention_days": "7"}


def test_saving_the_page_of_a_session_with_chunks_keeps_them(operator_client, recorded):
    page = f"{CHANGELIST}{recorded.pk}/change/"
    form = operator_client.get(page).content.decode().split('id="session_form"')[1]
    fields = dict(
        re.findall(r'<input type="(?:hidden|text|number)" name="([^"]+)" value="([^"]*)"', form)
    )

    response = operator_client.post(page, {**fields, "name": "night shift, reviewed"})

    assert response.status_code == 302
    recorded.refresh_from_db()
    assert recorded.name == "night shift, reviewed"
    assert fields["chunks-INITIAL_FORMS"] == "2"
    assert [c.status for c in Chunk.objects.filter(session=recorded)] == ["stored", "stored"]


# --- actions ------------------------------------------------------------------------------------


def test_stop_stops_the_session_and_audits_the_admin_user(operator_client, recorded):
    response = run_action(operator_client, "stop", recorded)

    recorded.refresh_from_db()
    assert recorded.status == "stopped"
    assert recorded.merkle_root
    entry = AuditEntry.objects.filter(
        action=AuditAction.SESSION_STATE_CHANGED, session_id=recorded.pk
    ).latest("at")
    assert (entry.actor, entry.detail["to"]) == ("admin-operator", "stopped")
    assert messages_of(response) == [("success", "“night shift”: the status is now 'stopped'.")]


def test_stop_warns_with_the_current_status_when_it_cannot(operator_client):
    session = SessionFactory(name="never started")

    response = run_action(operator_client, "stop", session)

    session.refresh_from_db()
    assert session.status == "created"
    assert messages_of(response) == [
        ("warning", "“never started”: Cannot stop: the current status is 'created'.")
    ]


def test_legal_hold_is_set_and_cleared(operator_client):
    session = SessionFactory(name="evidence")

    run_action(operator_client, "set_legal_hold", session)
    session.refresh_from_db()
    assert session.legal_hold is True

    response = run_action(operator_client, "clear_legal_hold", session)
    session.refresh_from_db()
    assert session.legal_hold is False
    assert messages_of(response)[-1] == ("success", "“evidence”: legal hold cleared.")
    changes = AuditEntry.objects.filter(action=AuditAction.SESSION_UPDATED, session_id=session.pk)
    assert [entry.detail["changed"] for entry in changes.order_by("at")] == [
        {"legal_hold": "True"},
        {"legal_hold": "False"},
    ]


def test_pause_keeps_chunks_waiting_and_resume_processes_them(operator_client, api_client, user):
    session = SessionFactory(owner=user, name="paused pipe", status="recording")

    run_action(operator_client, "pause_pipeline", session)
    put_chunk(api_client, session, 0, screen_like(50 * KIB))
    assert Pipeline.objects.get(session=session).state == PipelineState.PAUSED
    assert Chunk.objects.get(session=session).status == "received"

    response = run_action(operator_client, "resume_pipeline", session)

    assert Pipeline.objects.get(session=session).state == PipelineState.RUNNING
    assert [chunk.status for chunk in wait_until_settled(session)] == ["stored"]
    assert messages_of(response)[-1] == (
        "success",
        "“paused pipe”: the pipeline is now 'running'; waiting chunks are queued.",
    )


def test_pausing_a_paused_pipeline_warns_with_its_state(operator_client):
    session = SessionFactory(name="twice")
    pipeline_pause(session=session)

    response = run_action(operator_client, "pause_pipeline", session)

    assert messages_of(response) == [
        ("warning", "“twice”: Cannot pause the pipeline: the current status is 'paused'.")
    ]


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_verify_reports_intact_chunks(clients, role, recorded):
    response = run_action(clients[role], "verify", recorded)

    assert messages_of(response) == [("success", "“night shift”: 2 chunks verified, no damage.")]


def test_verify_reports_damage_after_a_flipped_stored_byte(operator_client, recorded):
    damage_stored(Chunk.objects.get(session=recorded, sequence=0), "flipped")

    response = run_action(operator_client, "verify", recorded)

    [(level, text)] = messages_of(response)
    assert level == "error"
    assert text.startswith("“night shift”: 1 damaged: chunk 0: hash mismatch in the chunk store")


def test_repair_from_the_newest_backup_brings_back_a_damaged_chunk(
    operator_client, api_client, recorded, settings, tmp_path
):
    settings.LUCID_BACKUP_PATH = tmp_path / "scheduled"
    settings.LUCID_BACKUP_PATH.mkdir()
    older = settings.LUCID_BACKUP_PATH / "lucid-backup-20000101T000000Z.tar.zst"
    older.write_bytes(b"not an archive")
    os.utime(older, (0, 0))
    newest = Path(backup_task())
    original = body_of(download(api_client, recorded, 1))
    damage_stored(Chunk.objects.get(session=recorded, sequence=1), "deleted")

    first = run_action(operator_client, "repair_from_backup", recorded)
    second = run_action(operator_client, "repair_from_backup", recorded)

    assert messages_of(first) == [
        ("success", f"“night shift”: repaired chunks 1 from {newest.name}.")
    ]
    assert messages_of(second)[-1] == (
        "success",
        f"“night shift”: nothing to repair ({newest.name}).",
    )
    assert body_of(download(api_client, recorded, 1)) == original
    (entry,) = AuditEntry.objects.filter(action=AuditAction.CHUNK_REPAIRED)
    assert (entry.session_id, entry.sequence, entry.actor) == (recorded.pk, 1, "admin-operator")


def test_repair_without_a_backup_says_there_is_none(operator_client, recorded, settings, tmp_path):
    settings.LUCID_BACKUP_PATH = tmp_path / "none yet"

    response = run_action(operator_client, "repair_from_backup", recorded)

    [(level, text)] = messages_of(response)
    assert (level, text.startswith("There is no backup in")) == ("error", True)


def test_delete_asks_for_confirmation_first(operator_client, recorded):
    response = run_action(operator_client, "delete_selected", recorded)

    assert response.status_code == 200
    assert "night shift" in response.content.decode()
    assert Session.objects.filter(pk=recorded.pk).exists()


def test_delete_goes_through_the_service_files_totals_and_audit(operator_client, recorded):
    assert remains(get_chunk_store(), f"{recorded.pk}/")

    response = run_action(operator_client, "delete_selected", recorded, post="yes")

    assert not Session.objects.filter(pk=recorded.pk).exists()
    assert not Chunk.objects.filter(session_id=recorded.pk).exists()
    assert remains(get_chunk_store(), f"{recorded.pk}/") == []
    counters = counters_read()
    assert counters["sessions.recording"] == 0
    assert counters["chunks.raw_bytes"] == 0
    entry = AuditEntry.objects.get(action=AuditAction.SESSION_DELETED, session_id=recorded.pk)
    assert entry.actor == "admin-operator"
    assert messages_of(response) == [("success", "“night shift”: deleted with its 2 chunks.")]


def test_delete_refuses_a_session_under_legal_hold(operator_client):
    held = SessionFactory(name="held", legal_hold=True)
    free = SessionFactory(name="free")

    response = run_action(operator_client, "delete_selected", held, free, post="yes")

    assert list(Session.objects.values_list("name", flat=True)) == ["held"]
    assert ("success", "“free”: deleted with its 0 chunks.") in messages_of(response)
    assert (
        "warning",
        "“held”: The session is under legal hold; clear legal_hold before deleting it.",
    ) in messages_of(response)


def test_a_held_session_has_no_delete_page(operator_client):
    held = SessionFactory(name="held", legal_hold=True)

    page = operator_client.get(f"{CHANGELIST}{held.pk}/change/").content.decode()

    assert "deletelink" not in page
    refused = operator_client.post(f"{CHANGELIST}{held.pk}/delete/", {"post": "yes"})
    assert refused.status_code == 403
    assert Session.objects.filter(pk=held.pk).exists()


def test_the_delete_page_deletes_through_the_service(operator_client, recorded):
    page = f"{CHANGELIST}{recorded.pk}/delete/"
    confirmation = operator_client.get(page)
    assert "night shift" in confirmation.content.decode()
    assert "with 2 chunks" in confirmation.content.decode()

    assert operator_client.post(page, {"post": "yes"}).status_code == 302

    assert not Session.objects.filter(pk=recorded.pk).exists()
    entry = AuditEntry.objects.get(action=AuditAction.SESSION_DELETED, session_id=recorded.pk)
    assert entry.actor == "admin-operator"
