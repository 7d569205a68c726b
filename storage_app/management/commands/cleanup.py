"""Apply retention and remove orphans now: `cleanup [--dry-run]`, the periodic task on demand."""

from collections.abc import Iterator

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from chunks_app.storage import ChunkStoreError
from core.audit import audit_actor
from core.errors import ApplicationError
from core.progress import Progress
from core.sizes import MIB
from storage_app.retention import CleanupReport, lucid_cleanup

PROGRESS_FROM_ITEMS = 100


def _lines(report: CleanupReport) -> Iterator[str]:
    remove, stop, mark = (
        ("would remove", "would stop", "would mark")
        if report.dry_run
        else ("removed", "stopped", "marked")
    )
    retention, orphans = report.retention, report.orphans
    for candidate in retention.removed:
        size = f"{candidate.compressed_size / MIB:.1f} MiB"
        yield (
            f"{remove} session {candidate.session_id} {candidate.name!r} ({size}): "
            f"{candidate.policy}: {candidate.reason}"
        )
    for candidate in retention.stopped:
        yield f"{stop} session {candidate.session_id} {candidate.name!r}: stale: {candidate.reason}"
    for candidate, why in retention.skipped:
        yield f"kept session {candidate.session_id} {candidate.name!r} ({candidate.policy}): {why}"
    for orphan in orphans.files:
        yield f"{remove} {orphan.area} file {orphan.key} ({orphan.size} bytes): {orphan.reason}"
    for leftover in orphans.leftovers:
        yield f"{remove} {leftover.area} leftover {leftover.name}: an interrupted write"
    for lost in orphans.lost_chunks:
        yield f"{mark} chunk {lost.session_id}#{lost.sequence} ({lost.status}) failed: {lost.error}"


class Command(BaseCommand):
    help = (
        "Remove sessions past retention, beyond LUCID_MAX_SESSIONS or above the disk watermark, "
        "stop stale recordings, remove orphan files and leftovers, and mark chunks whose file "
        "is gone as failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be done; change nothing."
        )

    def handle(self, *args, dry_run: bool, **options):
        def progress(label: str, total: int) -> Progress | None:
            return (
                Progress(label, total, stream=self.stderr) if total >= PROGRESS_FROM_ITEMS else None
            )

        try:
            with audit_actor("command:cleanup"):
                report = lucid_cleanup(now=timezone.now(), dry_run=dry_run, progress=progress)
        except (ApplicationError, ChunkStoreError, DatabaseError) as error:
            raise CommandError(f"cleanup failed: {error}") from error
        for line in _lines(report):
            self.stdout.write(line)
        for error in report.errors:
            self.stderr.write(f"error: {error}")
        self.stdout.write(report.summary())
        if report.errors:
            raise CommandError(f"cleanup: {len(report.errors)} failures, listed above.")
