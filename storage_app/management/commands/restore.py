"""Restore sessions from a backup archive, verified whole before anything is written."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.audit import audit_actor
from core.errors import ApplicationError
from core.progress import Progress
from core.sizes import MIB
from storage_app.backup.restore import backup_restore


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

    def handle(self, *args, file: Path, dry_run: bool, **options):
        try:
            with audit_actor("command:restore"):
                result = backup_restore(
                    archive=file,
                    dry_run=dry_run,
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
        restored = result.sessions_created + result.sessions_extended
        prefix = "restore (dry run, nothing written)" if dry_run else "restore"
        verb = "would restore" if dry_run else "restored"
        summary = (
            f"{prefix}: archive {result.archive_id} verified; {verb} {restored} sessions "
            f"({result.sessions_created} new, {result.sessions_extended} extended), "
            f"{result.chunks_written} chunks, {result.bytes_written / MIB:.1f} MiB; "
            f"{result.sessions_unchanged} already present and unchanged"
        )
        if not dry_run and not restored:
            summary += "; nothing to do"
        self.stdout.write(summary)
