"""Retention: each policy, what is never removed, stale recordings, command, task and schedule."""

import importlib
import io
import uuid
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from chunks_app.models import Chunk
from chunks_app.spool import get_spool
from chunks_app.storage import ChunkStoreError, get_chunk_store
from core.choices import AuditAction
from core.counters import counters_read
from core.models import AuditEntry
from lucid.celery import app as celery_app
from sessions_app.models import Session
from storage_app.management.commands import cleanup as cleanup_command
from storage_app.retention import RetentionPolicy, lucid_cleanup, retention_apply, retention_plan
from storage_app.tasks import backup_task, cleanup_task
from tests.chunks_app.helpers import (
    KIB,
    post_stream,
    put_chunk,
    random_bytes,
    wait_until_settled,
)
from tests.factories import SessionFactory
from tests.sessions_app.test_statistics import recount_system
from tests.support.faults import contents

pytestmark = pytest.mark.django_db(transaction=True)
CHUNK_SIZE = 64 * KIB
STORED_BYTES = 20_000
HOUR = 3600


@pytest.fixture(autouse=True)
def policies(settings):
    """Defaults no test reaches by accident: a huge quota, many sessions, a month of retention."""
    settings.LUCID_RETENTION_DAYS = 30
    settings.LUCID_MAX_SESSIONS = 1000
    settings.LUCID_DISK_HIGH_WATERMARK = 90
    settings.LUCID_STORAGE_QUOTA_BYTES = 1024**4
    settings.LUCID_STALE_SESSION_HOURS = 24
    settings.LUCID_ORPHAN_GRACE_MINUTES = 60
    return settings


@pytest.fixture
def stopped(user):
    """A stopped session, stopped `days` ago."""

    def make(days: float, **fields) -> Session:
        stopped_at = timezone.now() - timedelta(days=days)
        return SessionFactory(
            owner=user,
            status="stopped",
            created_at=stopped_at - timedelta(hours=1),
            stopped_at=stopped_at,
            **fields,
        )

    return make


@pytest.fixture
def stored(api_client, user):
    """A stopped session holding STORED_BYTES of incompressible chunk, stopped `days` ago."""

    def make(days: float, **fields) -> Session:
        session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE, **fields)
        put_chunk(api_client, session, 0, random_bytes(STORED_BYTES))
        wait_until_settled(session)
        api_client.post(f"/api/v1/sessions/{session.id}/stop")
        stopped_at = timezone.now() - timedelta(days=days)
        Session.objects.filter(pk=session.pk).update(stopped_at=stopped_at)
        session.refresh_from_db()
        return session

    return make


def cleanup(*, dry_run: bool = False):
    return lucid_cleanup(now=timezone.now(), dry_run=dry_run)


def remaining(*sessions: Session) -> set[uuid.UUID]:
    return set(Session.objects.filter(pk__in=[s.pk for s in sessions]).values_list("pk", flat=True))


def ids(*sessions: Session) -> set[uuid.UUID]:
    return {session.pk for session in sessions}


def picked(policy: RetentionPolicy) -> list[uuid.UUID]:
    return [c.session_id for c in retention_plan(now=timezone.now()).picked_by(policy)]


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("cleanup", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def everything() -> tuple:
    """Every row and file cleanup could change, and the running totals."""
    return (
        list(Session.objects.order_by("pk").values()),
        list(Chunk.objects.order_by("pk").values()),
        list(AuditEntry.objects.order_by("pk").values()),
        counters_read(),
        contents(get_chunk_store()),
        contents(get_spool()),
    )


def statistics_equal_a_recount(client) -> None:
    statistics = client.get("/api/v1/sessions/statistics").json()
    expected = recount_system()
    assert {key: statistics[key] for key in expected} == expected


def make_stale(session: Session, *, hours: float) -> None:
    since = timezone.now() - timedelta(hours=hours)
    Session.objects.filter(pk=session.pk).update(last_data_at=since, started_at=since)


def test_sessions_past_the_default_retention_are_removed(stopped):
    expired, kept = stopped(31), stopped(29)

    report = cleanup()

    assert remaining(expired, kept) == ids(kept)
    assert [(c.session_id, c.policy) for c in report.retention.removed] == [
        (expired.pk, RetentionPolicy.AGE)
    ]
    assert "kept 30 days (LUCID_RETENTION_DAYS)" in report.retention.removed[0].reason


def test_a_session_s_own_retention_days_overrides_the_default(stopped):
    short, long = stopped(8, retention_days=7), stopped(60, retention_days=90)

    assert picked(RetentionPolicy.AGE) == [short.pk]
    cleanup()

    assert remaining(short, long) == ids(long)


def test_retention_days_zero_removes_a_session_at_the_next_cleanup_once_stopped(user):
    done = SessionFactory(owner=user, status="stopped", retention_days=0)
    recording = SessionFactory(owner=user, status="recording", retention_days=0)

    cleanup()

    assert remaining(done, recording) == ids(recording)


def test_a_failed_session_never_stopped_ages_from_its_creation(user):
    old = SessionFactory(owner=user, status="failed", created_at=timezone.now() - timedelta(40))
    young = SessionFactory(owner=user, status="failed", created_at=timezone.now() - timedelta(20))

    report = cleanup()

    assert remaining(old, young) == ids(young)
    assert report.retention.removed[0].reason.startswith("created ")


def test_at_most_max_sessions_stopped_sessions_are_kept_oldest_going_first(settings, stopped):
    settings.LUCID_MAX_SESSIONS = 2
    oldest, older, newer, newest = stopped(4), stopped(3), stopped(2), stopped(1)

    assert picked(RetentionPolicy.COUNT) == [oldest.pk, older.pk]
    cleanup()

    assert remaining(oldest, older, newer, newest) == ids(newer, newest)


def test_the_count_leaves_out_sessions_already_removed_by_age(settings, stopped):
    settings.LUCID_MAX_SESSIONS = 2
    expired, oldest, newer, newest = stopped(40), stopped(3), stopped(2), stopped(1)

    plan = retention_plan(now=timezone.now())

    assert [c.session_id for c in plan.picked_by(RetentionPolicy.AGE)] == [expired.pk]
    assert [c.session_id for c in plan.picked_by(RetentionPolicy.COUNT)] == [oldest.pk]
    cleanup()
    assert remaining(expired, oldest, newer, newest) == ids(newer, newest)


def test_above_the_watermark_the_oldest_sessions_go_until_below(settings, stored):
    oldest, middle, newest = stored(3), stored(2), stored(1)
    settings.LUCID_STORAGE_QUOTA_BYTES = 64_000

    plan = retention_plan(now=timezone.now())

    assert plan.usage.used_bytes == 3 * STORED_BYTES
    assert plan.usage.percent == pytest.approx(93.75)
    assert plan.projected_usage.percent == pytest.approx(62.5)
    assert [c.session_id for c in plan.picked_by(RetentionPolicy.WATERMARK)] == [oldest.pk]
    report = retention_apply(plan=plan, dry_run=False)
    assert report.removed_bytes == STORED_BYTES
    assert remaining(oldest, middle, newest) == ids(middle, newest)
    assert get_chunk_store().used_bytes() == 2 * STORED_BYTES
    assert not list(get_chunk_store().keys(f"{oldest.pk}/"))


def test_below_the_watermark_nothing_is_removed(settings, stored):
    sessions = [stored(3), stored(2)]
    settings.LUCID_STORAGE_QUOTA_BYTES = 3 * STORED_BYTES

    cleanup()

    assert remaining(*sessions) == ids(*sessions)


def test_the_watermark_counts_what_age_already_frees(settings, stored):
    expired, old, new = stored(40), stored(3), stored(1)
    settings.LUCID_STORAGE_QUOTA_BYTES = 64_000

    plan = retention_plan(now=timezone.now())

    assert [c.session_id for c in plan.removals] == [expired.pk]
    assert plan.picked_by(RetentionPolicy.WATERMARK) == []
    cleanup()
    assert remaining(expired, old, new) == ids(old, new)


@pytest.mark.filesystem_only("a bucket has no used share; LUCID_STORAGE_BACKEND=s3 needs a quota")
def test_without_a_quota_the_watermark_is_the_filesystem_s_used_share(settings, stored):
    first, second = stored(2), stored(1)
    empty = SessionFactory(owner=first.owner, status="stopped")
    settings.LUCID_STORAGE_QUOTA_BYTES = 0
    settings.LUCID_DISK_HIGH_WATERMARK = 0

    plan = retention_plan(now=timezone.now())

    assert plan.usage.total_bytes > 0
    assert 0 < plan.usage.percent <= 100
    assert [c.session_id for c in plan.picked_by(RetentionPolicy.WATERMARK)] == [
        first.pk,
        second.pk,
    ]
    assert empty.pk not in [c.session_id for c in plan.removals]


def test_legal_hold_is_never_removed_by_any_policy(settings, stored):
    held = stored(400, legal_hold=True)
    other = stored(1)
    Session.objects.filter(pk=held.pk).update(retention_days=0)
    settings.LUCID_MAX_SESSIONS = 0
    settings.LUCID_STORAGE_QUOTA_BYTES = STORED_BYTES

    report = cleanup()

    assert remaining(held, other) == ids(held)
    assert [c.session_id for c in report.retention.removed] == [other.pk]


def test_unstopped_sessions_are_never_removed(settings, api_client, user):
    settings.LUCID_MAX_SESSIONS = 0
    settings.LUCID_STORAGE_QUOTA_BYTES = 1
    long_ago = timezone.now() - timedelta(days=400)
    sessions = [
        SessionFactory(owner=user, status=status, retention_days=0, created_at=long_ago)
        for status in ("created", "recording", "paused")
    ]
    put_chunk(api_client, sessions[1], 0, random_bytes(STORED_BYTES))
    wait_until_settled(sessions[1])

    report = cleanup()

    assert remaining(*sessions) == ids(*sessions)
    assert report.retention.removed == []


def test_a_session_put_under_legal_hold_after_the_plan_is_kept(stopped):
    session = stopped(40)
    plan = retention_plan(now=timezone.now())
    Session.objects.filter(pk=session.pk).update(legal_hold=True)

    report = retention_apply(plan=plan, dry_run=False)

    assert remaining(session) == ids(session)
    assert report.removed == []
    assert [(c.session_id, why) for c, why in report.skipped] == [(session.pk, "under legal hold")]


def test_stale_recordings_are_stopped_not_removed(api_client, user):
    stale = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    put_chunk(api_client, stale, 0, random_bytes(5000))
    wait_until_settled(stale)
    make_stale(stale, hours=25)
    quiet = SessionFactory(owner=user, status="paused")
    make_stale(quiet, hours=30)
    Session.objects.filter(pk=quiet.pk).update(last_data_at=None)
    active = SessionFactory(owner=user, status="recording")
    make_stale(active, hours=1)

    report = cleanup()

    stale.refresh_from_db()
    quiet.refresh_from_db()
    active.refresh_from_db()
    assert (stale.status, quiet.status, active.status) == ("stopped", "stopped", "recording")
    assert stale.merkle_root == Chunk.objects.get(session=stale).sha256
    assert {c.session_id for c in report.retention.stopped} == ids(stale, quiet)
    assert report.retention.removed == []


def test_a_stale_stream_is_sealed_with_its_tail(api_client, user):
    session = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    data = random_bytes(CHUNK_SIZE + 4321)
    post_stream(api_client, session, data)
    make_stale(session, hours=48)

    cleanup()

    chunks = wait_until_settled(session)
    session.refresh_from_db()
    assert session.status == "stopped"
    assert [(chunk.sequence, chunk.size) for chunk in chunks] == [(0, CHUNK_SIZE), (1, 4321)]
    assert session.merkle_root
    response = api_client.get(f"/api/v1/sessions/{session.id}/recording")
    assert b"".join(response.streaming_content) == data


def test_running_totals_equal_a_recount_after_cleanup(api_client, user, stored, settings):
    expired = stored(40)
    lost = stored(1)
    get_chunk_store().delete(Chunk.objects.get(session=lost).storage_key)
    stale = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    put_chunk(api_client, stale, 0, random_bytes(3000))
    wait_until_settled(stale)
    make_stale(stale, hours=25)
    waiting = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    api_client.post(f"/api/v1/sessions/{waiting.id}/pipeline/pause")
    put_chunk(api_client, waiting, 0, random_bytes(4000))
    get_spool().delete(Chunk.objects.get(session=waiting).spool_key)

    report = cleanup()

    assert (len(report.retention.removed), len(report.retention.stopped)) == (1, 1)
    assert len(report.orphans.lost_chunks) == 2
    assert remaining(expired) == set()
    statistics_equal_a_recount(api_client)


def test_a_dry_run_changes_nothing(api_client, user, stored, stopped, settings, clock):
    stopped(40)
    stored(2)
    stored(1)
    stale = SessionFactory(owner=user, status="recording", chunk_size=CHUNK_SIZE)
    put_chunk(api_client, stale, 0, random_bytes(3000))
    wait_until_settled(stale)
    get_chunk_store().delete(Chunk.objects.get(session=stale).storage_key)
    make_stale(stale, hours=25)
    get_chunk_store().put(f"{uuid.uuid4()}/000000000000.none", [b"no row"])
    clock.advance(2 * HOUR)
    settings.LUCID_STORAGE_QUOTA_BYTES = 2 * STORED_BYTES
    before = everything()

    out, _ = run_command("--dry-run")

    assert everything() == before
    assert out.splitlines()[-1] == (
        "cleanup: would remove 2 sessions (0.0 MiB), stop 1 stale recordings, "
        "1 orphan files, 0 leftovers; mark 1 rows failed"
    )
    assert "would remove session" in out
    assert "would stop session" in out
    assert "would mark chunk" in out


def test_the_command_prints_each_removal_with_its_reason_and_a_summary(stopped, stored):
    expired = stopped(31, name="old demo")
    big = stored(45)

    out, _ = run_command()

    lines = out.splitlines()
    assert any(
        line.startswith(f"removed session {expired.pk} 'old demo' (0.0 MiB): age: stopped ")
        for line in lines
    )
    assert any(line.startswith(f"removed session {big.pk}") for line in lines)
    assert lines[-1] == (
        f"cleanup: removed 2 sessions ({STORED_BYTES / 1024 / 1024:.1f} MiB), stopped 0 stale "
        "recordings, 0 orphan files, 0 leftovers; marked 0 rows failed"
    )
    entry = AuditEntry.objects.get(action=AuditAction.RETENTION_DELETED, session_id=expired.pk)
    assert entry.actor == "command:cleanup"
    assert entry.detail["policy"] == "age"


def test_the_command_shows_progress_when_there_is_much_to_do(monkeypatch, stopped):
    monkeypatch.setattr(cleanup_command, "PROGRESS_FROM_ITEMS", 2)
    stopped(40)
    stopped(41)

    _, err = run_command()

    assert "removing sessions: 2/2" in err


def test_the_command_exits_non_zero_when_something_fails(stored, clock, chunk_store_faults):
    session = stored(1)
    chunk = Chunk.objects.get(session=session)
    orphan = f"{session.pk}/000000000009.none"
    get_chunk_store().put(orphan, [b"no row"])
    clock.advance(2 * HOUR)
    chunk_store_faults.fail(
        "delete", ChunkStoreError(f"Could not delete {orphan}: Permission denied.")
    )
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match="1 failures"):
        call_command("cleanup", stdout=out, stderr=err)

    assert "Permission denied" in err.getvalue()
    assert "0 orphan files" in out.getvalue()
    assert get_chunk_store().exists(orphan)
    assert Chunk.objects.get(pk=chunk.pk).status == "stored"


def test_the_task_runs_the_whole_cleanup(stopped):
    expired = stopped(40)

    summary = cleanup_task.apply().result

    assert summary.startswith("cleanup: removed 1 sessions")
    assert remaining(expired) == set()
    assert AuditEntry.objects.get(action=AuditAction.RETENTION_DELETED).actor == "task:cleanup"


@pytest.mark.django_db
def test_the_migration_scheduled_cleanup_and_backup(settings):
    tasks = {task.name: task for task in PeriodicTask.objects.select_related("interval")}

    cleanup_entry = tasks["lucid: retention and cleanup"]
    backup_entry = tasks["lucid: backup"]
    assert cleanup_entry.task == "sessions_app.tasks.cleanup_task"
    assert backup_entry.task == "sessions_app.tasks.backup_task"
    assert celery_app.tasks[cleanup_entry.task].name == cleanup_task.name
    assert celery_app.tasks[backup_entry.task].name == backup_task.name
    assert (cleanup_entry.interval.every, cleanup_entry.interval.period) == (
        settings.LUCID_CLEANUP_INTERVAL_HOURS,
        "hours",
    )
    assert (backup_entry.interval.every, backup_entry.interval.period) == (
        settings.LUCID_BACKUP_INTERVAL_HOURS,
        "hours",
    )
    assert cleanup_entry.enabled and backup_entry.enabled


@pytest.mark.django_db
def test_the_schedule_migration_is_idempotent_and_keeps_admin_edits():
    migration = importlib.import_module("sessions_app.migrations.0006_beat_schedule")
    PeriodicTask.objects.filter(name="lucid: backup").delete()
    PeriodicTask.objects.filter(name="lucid: retention and cleanup").update(enabled=False)

    migration.create_periodic_tasks(django_apps, None)
    migration.create_periodic_tasks(django_apps, None)

    names = PeriodicTask.objects.filter(name__startswith="lucid: ").values_list("name", flat=True)
    assert sorted(name for name in names if name in migration.PERIODIC_TASKS) == [
        "lucid: backup",
        "lucid: retention and cleanup",
    ]
    assert not PeriodicTask.objects.get(name="lucid: retention and cleanup").enabled
