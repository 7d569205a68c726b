"""Re-read every stored chunk and check its hashes and its session's Merkle root."""

import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum

from core.audit import audit_actor
from core.errors import ApplicationError
from core.progress import Progress
from core.sizes import MIB
from sessions_app.models import Session
from storage_app.management.options import session_option_add
from storage_app.verify import chunks_verify


class Command(BaseCommand):
    help = (
        "Verify stored chunks: stored hash, decompressed sha256, and each Merkle root; "
        "mark damaged chunks `damaged`."
    )

    def add_arguments(self, parser):
        session_option_add(parser, help="Only this session")

    def handle(self, *args, sessions: list[uuid.UUID] | None, **options):
        selected = Session.objects.filter(pk__in=sessions) if sessions else Session.objects.all()
        total = selected.aggregate(n=Sum("chunk_count", default=0))["n"]
        progress = Progress("verify", total, stream=self.stderr)
        try:
            with audit_actor("command:verify"):
                report = chunks_verify(session_ids=sessions or None, progress=progress)
        except ApplicationError as error:
            raise CommandError(error.message) from error
        finally:
            progress.finish()
        for damage in report.damages:
            self.stdout.write(f"DAMAGED {damage}")
        self.stdout.write(
            f"verify: {report.sessions} sessions, {report.chunks} chunks, "
            f"{report.bytes_read / MIB:.1f} MiB checked, {len(report.damages)} problems"
        )
        if report.damages:
            raise CommandError(
                f"{len(report.damages)} problems found: repair the damaged chunks from a backup "
                "(manage.py restore ARCHIVE --repair), then run verify again."
            )
