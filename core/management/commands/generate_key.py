"""Print a new encryption key as a line for LUCID_ENCRYPTION_KEYS_FILE."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.encryption import generate_key_line


class Command(BaseCommand):
    help = (
        "Print a new AES-256 key as `<id>:<base64 of 32 random bytes>`, a line for "
        "LUCID_ENCRYPTION_KEYS_FILE (or an entry of LUCID_ENCRYPTION_KEYS)."
    )
    # Works whatever the key configuration: making a key is how a broken one gets fixed.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument(
            "key_id",
            nargs="?",
            help="The key's id (letters, digits, - and _); default: today's date.",
        )

    def handle(self, *args, key_id: str | None, **options):
        try:
            line = generate_key_line(key_id or timezone.now().strftime("key-%Y%m%d"))
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(line)
