"""Create the superuser named by DJANGO_SUPERUSER_USERNAME when it is set and absent."""

import os

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
        if not os.environ.get("DJANGO_SUPERUSER_PASSWORD"):
            raise CommandError(
                "DJANGO_SUPERUSER_USERNAME is set but DJANGO_SUPERUSER_PASSWORD is not; set both."
            )
        os.environ.setdefault("DJANGO_SUPERUSER_EMAIL", "")
        call_command("createsuperuser", interactive=False, username=username, verbosity=0)
        self.stdout.write(f"Superuser '{username}' created.")
