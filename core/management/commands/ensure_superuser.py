"""Create the superuser named by DJANGO_SUPERUSER_USERNAME when it is set and absent.

Its password: DJANGO_SUPERUSER_PASSWORD, or the file DJANGO_SUPERUSER_PASSWORD_FILE names.
"""

import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the superuser from DJANGO_SUPERUSER_USERNAME/PASSWORD/EMAIL if it is absent."

    def handle(self, *args, **options):
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        if not username:
            return
        if get_user_model().objects.filter(username=username).exists():
            self.stdout.write(f"Superuser '{username}' exists.")
            return
        password_file = os.environ.get("DJANGO_SUPERUSER_PASSWORD_FILE")
        if password_file:
            os.environ["DJANGO_SUPERUSER_PASSWORD"] = Path(password_file).read_text().strip()
        if not os.environ.get("DJANGO_SUPERUSER_PASSWORD"):
            raise CommandError(
                "DJANGO_SUPERUSER_USERNAME is set but DJANGO_SUPERUSER_PASSWORD (or "
                "DJANGO_SUPERUSER_PASSWORD_FILE) is not; set both."
            )
        os.environ.setdefault("DJANGO_SUPERUSER_EMAIL", "")
        call_command("createsuperuser", interactive=False, username=username, verbosity=0)
        self.stdout.write(f"Superuser '{username}' created.")
