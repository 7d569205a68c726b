"""Restore sessions from a backup archive, verified whole before anything is written."""

from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.audit import audit_actor
from core.errors import ApplicationError
from core.progress import Progress
from core.sizes import MIB
from storage_app.backup.restore import RestoreResult, backup_restore


def _chunk_lines(result: RestoreResult) -> Iterator[str]:
    """The chunks restored as damaged, repaired, and those the archive cannot repair."""
    would = "would " if result.dry_run else ""
    for chunk in result.chunks_damaged:
        yield (
            f"{would}restore as damaged (not in the archive): session {chunk.session_id} chunk "
            f"{chunk.sequence} (sha256 {chunk.sha256}): {chunk.reason}"
        )
    if result.repair is None:
        return
    for repair in result.repair.repaired:
        yield f"{'would repair' if result.dry_run else 'repaired'} {repair}"
    for repair in result.repair.unrepairable:
        yield f"cannot repair {repair}: {repair.obstacle}"


def _summary(result: RestoreResult) -> str:
    restored = result.sessions_created + result.sessions_extended
    prefix = "restore (dry run, nothing written)" if result.dry_run else "restore"
    verb = "would restore" if result.dry_run else "restored"
    summary = (
        f"{prefix}: archive {result.archive_id} verified; {verb} {restored} sessions "
        f"({result.sessions_created} new, {result.sessions_extended} extended), "
        f"{result.chunks_written} chunks, {result.bytes_written / MIB:.1f} MiB; "
        f"{result.sessions_unchanged} already present and unchanged"
    )
    if result.chunks_damaged:
        summary += f"; {len(result.chunks_damaged)} chunks damaged before the backup"
    repaired = result.repair.repaired if result.repair else []
    if result.repair is not None:
        verb = "would repair" if result.dry_run else "repaired"
        done = f"{verb} {len(repaired)}" if repaired else "nothing to repair"
        summary += f"; {result.repair.chunks_checked} chunks checked, {done}"
    if not result.dry_run and not restored and not repaired:
        summary += "; nothing to do"
    return summary


class Command(BaseCommand):
    help = (
        "Restore the sessions of a backup archive. Every hash is checked before anything is "
        "written; sessions already present with the same chunks are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, metavar="FILE")
        parser.add_argument(
            "--dry-run", action="store_true", help="Verify and report; write nothing."
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help=(
                "Also rewrite the damaged or missing chunk files of sessions already present "
                "from the archive, where its bytes match the chunk's sha256 (legal hold too)."
            ),
        )

    def handle(self, *args, file: Path, dry_run: bool, repair: bool, **options):
        try:
            with audit_actor("command:restore"):
                result = backup_restore(
                    archive=file,
                    dry_run=dry_run,
                    repair=repair,
                    progress=lambda label, total: Progress(label, total, stream=self.stderr),
                )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        would = "would create" if dry_run else "created"
        for username in result.users_created:
            self.stdout.write(
                f"{would} user {username!r}, inactive and without a password: set one and "
                "activate the account to give that owner access."
            )
        for line in _chunk_lines(result):
            self.stdout.write(line)
        self.stdout.write(_summary(result))
        if result.repair and result.repair.unrepairable:
            raise CommandError(
                f"{len(result.repair.unrepairable)} chunks cannot be repaired from {file}, "
                "listed above; repair them from another archive with restore --repair."
            )
