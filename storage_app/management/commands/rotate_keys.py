"""Re-encrypt every chunk and open stream tail under one key: `rotate_keys --to ID [--dry-run]`."""

from collections.abc import Iterator

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from chunks_app.storage import ChunkStoreError
from core.audit import audit_actor
from core.errors import ApplicationError
from core.progress import Progress
from core.sizes import MIB
from storage_app.rotation import KeptUnder, RotationReport, keys_rotate


def _under(key_id: str | None) -> str:
    return f"under key {key_id}" if key_id else "as plaintext"


def _done_lines(report: RotationReport) -> Iterator[str]:
    rewrite, reseal = (
        ("would rewrite", "would reseal") if report.dry_run else ("rewrote", "resealed")
    )
    for key_id, rewritten in sorted(report.rewritten.items(), key=lambda item: item[0] or ""):
        yield (
            f"{rewrite} {rewritten.chunks} chunks ({rewritten.bytes} bytes, "
            f"{rewritten.bytes / MIB:.1f} MiB) kept {_under(key_id)}"
        )
    if not report.rewritten:
        yield f"no chunk to rewrite: every chunk not damaged is under key {report.key_id}"
    yield f"{reseal} {report.tails} open stream tails under key {report.key_id}"
    for damage in report.damaged:
        yield f"skipped damaged chunk {damage}"
    if report.changed:
        yield f"skipped {report.changed} chunks that changed meanwhile: run rotate_keys again"


def _remaining_lines(report: RotationReport) -> Iterator[str]:
    yield "chunks kept now:"
    for key_id in sorted(report.remaining.keys() | set(report.configured), key=lambda k: k or ""):
        kept = report.remaining.get(key_id, KeptUnder())
        damaged = f" ({kept.damaged} damaged)" if kept.damaged else ""
        yield f"  {key_id or 'plaintext'}: {kept.chunks}{damaged}"
    if report.removable:
        yield (
            f"Keys no chunk needs any more: {', '.join(report.removable)}. They can be removed "
            "from the configuration of every role once no backup made before this rotation may "
            "still have to be restored."
        )
    if report.active_id != report.key_id:
        yield (
            f"warning: key {report.key_id} is not the active key; new data is still encrypted "
            f"{_under(report.active_id)}. Set LUCID_ENCRYPTION_ACTIVE_KEY={report.key_id} on "
            "every role to change that."
        )


class Command(BaseCommand):
    help = (
        "Re-encrypt every chunk (stored or spooled) and every open stream tail under key ID, "
        "plaintext included; resumable, safe to interrupt. Then reports the chunks kept under "
        "each key and which old keys can be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--to", dest="key_id", required=True, metavar="ID", help="The configured key to use."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be rewritten; change nothing."
        )

    def handle(self, *args, key_id: str, dry_run: bool, **options):
        def progress(label: str, total: int) -> Progress:
            return Progress(label, total, stream=self.stderr)

        try:
            with audit_actor("command:rotate_keys"):
                report = keys_rotate(key_id=key_id, dry_run=dry_run, progress=progress)
        except (ApplicationError, ChunkStoreError, DatabaseError) as error:
            raise CommandError(f"rotate_keys failed: {error}") from error
        for line in _done_lines(report):
            self.stdout.write(line)
        for error in report.errors:
            self.stderr.write(f"error: {error}")
        for line in _remaining_lines(report):
            self.stdout.write(line)
        if report.errors:
            raise CommandError(
                f"rotate_keys: {len(report.errors)} failures, listed above; run it again once "
                "they are fixed."
            )
