"""The admin index (its sections and key figures), the dashboard (its numbers and SVG charts),
the read-only audit trail admin and the History buttons that open it."""

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chunks_app.models import Chunk
from chunks_app.selectors import storage_usage
from core.choices import AuditAction
from core.counters import counters_add, counters_read, counters_set
from core.models import AuditEntry
from core.units import ratio_text, size_text
from lucid.dashboard import dashboard_figures, rows_chart
from storage_app.backup.create import LAST_SUCCESS_COUNTER
from tests.chunks_app.helpers import KIB, put_chunk, random_bytes, screen_like, wait_until_settled
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = "/admin/dashboard/"
AUDIT = "/admin/lucid/auditentry/"
ROLES = ["superuser", "operator", "auditor"]


@pytest.fixture
def history(api_client, user):
    """Sessions in three states; the recording one has a compressible and a random chunk."""
    recording = SessionFactory(owner=user, name="live", status="recording")
    put_chunk(api_client, recording, 0, screen_like(400 * KIB))
    put_chunk(api_client, recording, 1, random_bytes(100 * KIB))
    wait_until_settled(recording)
    SessionFactory(owner=user, name="done", status="stopped")
    SessionFactory(owner=user, name="new")
    return recording


# --- dashboard ----------------------------------------------------------------------------------


def test_the_dashboard_is_for_staff_only(clients):
    recorder = Client()
    recorder.force_login(UserFactory(username="recorder", roles=["recorder"]))

    for client in [Client(), recorder]:
        response = client.get(DASHBOARD)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("role", ROLES)
def test_the_dashboard_draws_its_four_charts(clients, role, history):
    response = clients[role].get(DASHBOARD)

    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('<svg class="chart"') == 4
    for label in [
        "Chunk store:",
        "Sessions by status",
        "Ingest per hour over the last 24 hours",
        "Stored size by codec",
    ]:
        assert f'aria-label="{label}' in body
    assert "<script" not in body.split('<div id="content-main"')[1].split("</main>")[0]


def test_the_dashboard_shows_storage_sessions_ingest_and_ratios(clients, history):
    body = clients["operator"].get(DASHBOARD).content.decode()

    usage = storage_usage()
    compressible, random = Chunk.objects.filter(session=history).order_by("sequence")
    assert f"used {size_text(usage.used_bytes)}" in body
    assert f"free {size_text(usage.free_bytes)}" in body
    assert "Sessions by status (3)" in body
    for status, count in [("Created", 1), ("Recording", 1), ("Stopped", 1), ("Paused", 0)]:
        assert f"<title>{status}: {count}</title>" in body
    assert f"{size_text(500 * KIB)} received in the last 24 hours." in body
    zstd_ratio = ratio_text(compressible.size, compressible.compressed_size)
    assert f"<title>zstd: {zstd_ratio} (" in body
    assert f"<title>none: 1.0× ({size_text(random.size)} of" in body


def test_ingest_and_raw_bytes_by_codec_are_counted_as_chunks_flow(history):
    counters = counters_read()

    hourly = {key: value for key, value in counters.items() if key.startswith("ingest.hourly.")}
    assert sum(hourly.values()) == 500 * KIB
    assert counters["store.raw_bytes_total.zstd"] == 400 * KIB
    assert counters["store.raw_bytes_total.none"] == 100 * KIB


def test_ingest_covers_the_last_24_hours_up_to_now(db):
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    counters_add(
        {
            "ingest.hourly.2026030112": 300,
            "ingest.hourly.2026022813": 200,
            "ingest.hourly.2026022812": 999,
        }
    )

    figures = dashboard_figures(now=now)

    assert len(figures.ingest_by_hour) == 24
    assert figures.ingest_by_hour[0] == (now.replace(minute=0) - timedelta(hours=23), 200)
    assert figures.ingest_by_hour[-1] == (now.replace(minute=0), 300)
    assert figures.ingest_total == 500


def test_chart_labels_are_escaped():
    svg = rows_chart([("<script>alert(1)</script>", 1, "1 & 2")], label='say "hi"')

    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "1 &amp; 2" in svg
    assert 'aria-label="say &quot;hi&quot;"' in svg


def test_the_admin_index_links_to_the_dashboard(clients):
    response = clients["auditor"].get("/admin/")

    assert f'href="{DASHBOARD}"' in response.content.decode()


# --- audit trail --------------------------------------------------------------------------------


@pytest.fixture
def entries(db) -> tuple[AuditEntry, AuditEntry]:
    session_id = uuid.uuid4()
    downloaded = AuditEntry.objects.create(
        actor="alice",
        address="192.0.2.10",
        action=AuditAction.CHUNK_DOWNLOADED,
        session_id=session_id,
        sequence=7,
    )
    deleted = AuditEntry.objects.create(
        actor="bob", action=AuditAction.SESSION_DELETED, session_id=uuid.uuid4()
    )
    return downloaded, deleted


@pytest.mark.parametrize("role", ROLES)
def test_the_audit_list_shows_who_did_what_when_and_from_where(clients, role, entries):
    downloaded, _ = entries

    response = clients[role].get(AUDIT)

    assert response.status_code == 200
    body = response.content.decode()
    for text in [
        "alice",
        "192.0.2.10",
        "Chunk downloaded",
        str(downloaded.session_id),
        '<td class="field-sequence">7</td>',
        "bob",
        "Session deleted",
    ]:
        assert text in body


def test_the_audit_list_filters_by_action_and_searches_actor_and_session(clients, entries):
    downloaded, deleted = entries
    client = clients["auditor"]

    assert client.get(AUDIT, {"action__exact": "session_deleted"}).context["cl"].result_count == 1
    assert client.get(AUDIT, {"q": "alice"}).context["cl"].result_count == 1
    by_session = client.get(AUDIT, {"q": str(deleted.session_id)})
    assert [entry.pk for entry in by_session.context["cl"].result_list] == [deleted.pk]


@pytest.mark.parametrize("role", ROLES)
def test_nobody_adds_changes_or_deletes_an_audit_entry(clients, role, entries):
    entry, _ = entries
    client = clients[role]
    page = f"{AUDIT}{entry.pk}/change/"

    listing = client.get(AUDIT).content.decode()
    view = client.get(page)

    assert "action-checkbox" not in listing
    assert f"{AUDIT}add/" not in listing
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert "deletelink" not in view.content.decode()
    assert client.get(f"{AUDIT}add/").status_code == 403
    assert client.post(page, {"actor": "mallory"}).status_code == 403
    assert client.post(f"{AUDIT}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).actor == "alice"


# --- the History button -------------------------------------------------------------------------


def audit_shown(response) -> list[str]:
    return [entry.action for entry in response.context["cl"].result_list]


@pytest.fixture
def audited(history) -> Chunk:
    """The recording session's chunk 1, with audit entries of its own and of its chunk 0."""
    AuditEntry.objects.filter(session_id=history.pk).delete()
    AuditEntry.objects.create(
        actor="alice", action=AuditAction.SESSION_UPDATED, session_id=history.pk
    )
    for sequence in (0, 1):
        AuditEntry.objects.create(
            actor="alice",
            action=AuditAction.CHUNK_DOWNLOADED,
            session_id=history.pk,
            sequence=sequence,
        )
    AuditEntry.objects.create(
        actor="bob", action=AuditAction.SESSION_DELETED, session_id=uuid.uuid4()
    )
    return Chunk.objects.get(session=history, sequence=1)


@pytest.mark.parametrize("role", ROLES)
def test_a_sessions_history_button_opens_its_audit_trail(clients, role, audited):
    session_id = audited.session_id

    response = clients[role].get(f"/admin/sessions_app/session/{session_id}/history/", follow=True)

    assert response.redirect_chain == [(f"{AUDIT}?session_id={session_id}", 302)]
    assert sorted(audit_shown(response)) == [
        "chunk_downloaded",
        "chunk_downloaded",
        "session_updated",
    ]


def test_a_chunks_history_button_opens_the_audit_trail_of_that_chunk(clients, audited):
    response = clients["auditor"].get(f"/admin/chunks_app/chunk/{audited.pk}/history/", follow=True)

    assert response.redirect_chain[-1][0].endswith(f"session_id={audited.session_id}&sequence=1")
    assert audit_shown(response) == ["chunk_downloaded"]
    assert response.context["cl"].result_list[0].sequence == 1


def test_a_pipelines_history_button_opens_its_sessions_audit_trail(clients, audited):
    pipeline = audited.session.pipeline

    response = clients["operator"].get(
        f"/admin/pipeline_app/pipeline/{pipeline.pk}/history/", follow=True
    )

    assert response.redirect_chain == [(f"{AUDIT}?session_id={audited.session_id}", 302)]
    assert len(audit_shown(response)) == 3


def test_whoever_may_not_read_the_audit_trail_keeps_djangos_history_page(audited):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="sessions_app", codename="view_session")
    )
    client = Client()
    client.force_login(viewer)

    response = client.get(f"/admin/sessions_app/session/{audited.session_id}/history/")

    assert response.status_code == 200
    assert "change history" in response.content.decode().lower()


# --- the index ----------------------------------------------------------------------------------


FIGURE = re.compile(
    r'<a class="figure[^"]*" id="figure-(?P<name>[a-z]+)"[^>]*>\s*'
    r'<span class="value">(?P<value>.*?)</span><span class="label">(?P<label>.*?)</span>'
)


def response_figures(body: str) -> dict[str, str]:
    """Each figure tile of the index as its value and label read together."""
    return {
        match["name"]: html.unescape(f"{match['value']} {match['label']}")
        for match in FIGURE.finditer(body)
    }


def captions(response) -> list[str]:
    return [app["name"] for app in response.context["app_list"]]


def test_the_index_shows_sessions_first_then_one_section_per_concern(clients):
    response = clients["superuser"].get("/admin/")

    assert captions(response) == ["Recordings", "Processing", "Audit", "Access", "Schedules"]
    recordings = response.context["app_list"][0]
    assert [model["name"] for model in recordings["models"]] == ["Sessions", "Chunks"]


def test_the_index_keeps_periodic_tasks_and_hides_the_beat_schedule_models(clients):
    body = clients["superuser"].get("/admin/").content.decode()

    assert 'href="/admin/django_celery_beat/periodictask/"' in body
    for model in ["clockedschedule", "crontabschedule", "intervalschedule", "solarschedule"]:
        assert f'href="/admin/django_celery_beat/{model}/"' not in body
    assert clients["superuser"].get("/admin/django_celery_beat/crontabschedule/").status_code == 200


def test_the_sidebar_of_every_page_has_the_same_sections(clients):
    response = clients["operator"].get("/admin/chunks_app/chunk/")

    assert [app["name"] for app in response.context["available_apps"]][:2] == [
        "Recordings",
        "Processing",
    ]


@pytest.mark.parametrize("role", ROLES)
def test_the_index_shows_the_key_figures(clients, role, history):
    counters_add({"chunks.damaged": 1})

    body = clients[role].get("/admin/").content.decode()

    figures = response_figures(body)
    stored = counters_read(["chunks.stored_bytes"])["chunks.stored_bytes"]
    assert figures["recording"] == "1 recording now"
    assert figures["sessions"] == "3 sessions"
    assert figures["stored"] == (
        f"{size_text(stored)} stored of {size_text(500 * KIB)} recorded "
        f"({ratio_text(500 * KIB, stored)})"
    )
    assert figures["backlog"] == "0 bytes waiting to be stored"
    assert figures["failed"] == "0 failed chunks"
    assert figures["damaged"] == "1 damaged chunks"
    assert figures["storage"].endswith("% of the store's space used (watermark 90%)")
    assert figures["backup"] == "never last full backup"


def test_the_index_marks_damage_and_a_late_backup_as_alerts(clients, db):
    counters_add({"chunks.damaged": 2})

    body = clients["operator"].get("/admin/").content.decode()

    assert 'class="figure alert" id="figure-damaged"' in body
    assert 'class="figure" id="figure-failed"' in body
    assert 'class="figure alert" id="figure-backup"' in body


def test_a_recent_backup_shows_its_age(clients, db):
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3, minutes=2)
    counters_set({LAST_SUCCESS_COUNTER: int(three_hours_ago.timestamp())})

    body = clients["auditor"].get("/admin/").content.decode()

    assert response_figures(body)["backup"] == "3 h 02 min ago last full backup"
    assert 'class="figure" id="figure-backup"' in body


def test_the_index_figures_cost_the_same_queries_however_much_is_recorded(clients, history):
    client = clients["superuser"]
    client.get("/admin/")
    with CaptureQueriesContext(connection) as few:
        client.get("/admin/")
    SessionFactory.create_batch(5, status="recording")
    cache.clear()
    client.get("/admin/")

    with CaptureQueriesContext(connection) as many:
        client.get("/admin/")

    assert len(many) == len(few)
