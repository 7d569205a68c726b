"""Print a long-lived API key for a recorder machine: `Authorization: Token <key>`."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.services import api_key_issue


class Command(BaseCommand):
    help = "Print the API key of USERNAME (creating it if needed); --rotate replaces it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="Revoke the current key and issue a new one."
        )

    def handle(self, *args, username: str, rotate: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"No user named '{username}'. Create it first, then print its key: "
                f"python manage.py create_user {username} --role recorder --token"
            )
        self.stdout.write(api_key_issue(user=user, rotate=rotate))
