"""Write sessions, their chunks as stored and a manifest of every hash into one archive."""

from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit import audit_actor
from core.errors import ApplicationError
from core.progress import Progress
from core.sizes import MIB
from storage_app.backup.create import backup_create
from storage_app.management.options import session_option_add

EXIT_DAMAGED = 3


def aware_datetime(text: str) -> datetime:
    """An ISO 8601 date and time; one without an offset is taken as UTC."""
    value = parse_datetime(text)
    if value is None:
        raise ValueError(text)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Back up sessions (all by default) into one zstd-compressed tar archive."

    def add_arguments(self, parser):
        session_option_add(parser, help="Only this session")
        parser.add_argument(
            "--since",
            type=aware_datetime,
            metavar="ISO-DATETIME",
            help="Only sessions created at or after this time (UTC unless an offset is given).",
        )
        parser.add_argument("--output", type=Path, required=True, metavar="FILE")
        parser.add_argument(
            "--incremental",
            type=Path,
            metavar="PREVIOUS_ARCHIVE",
            help="Leave out the chunk bytes this earlier archive already holds.",
        )

    def handle(self, *args, sessions, since, output, incremental, **options):
        try:
            with audit_actor("command:backup"):
                result = backup_create(
                    output=output,
                    session_ids=sessions,
                    since=since,
                    incremental_from=incremental,
                    progress=lambda label, total: Progress(label, total, stream=self.stderr),
                )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        for chunk in result.damaged:
            self.stdout.write(
                f"DAMAGED session {chunk.session_id} chunk {chunk.sequence} "
                f"(sha256 {chunk.sha256}): {chunk.reason}"
            )
        base = f", {result.chunks_in_base} in base {result.base_id}" if result.base_id else ""
        damaged = f", {len(result.damaged)} damaged left out" if result.damaged else ""
        self.stdout.write(
            f"backup: {result.session_count} sessions, {result.chunk_count} chunks{base}"
            f"{damaged}, {result.size / MIB:.1f} MiB → {result.path} (archive {result.archive_id})"
        )
        if result.damaged:
            raise CommandError(
                f"backup completed with {len(result.damaged)} damaged chunks, listed above and "
                "in the archive's manifest; repair them from an older backup (restore --repair).",
                returncode=EXIT_DAMAGED,
            )
