"""Create a recorder, operator or auditor: `create_user NAME --role ROLE [--token]`."""

import getpass
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.choices import Role
from core.errors import ApplicationError
from core.services import CONSOLE_ROLES, api_key_issue, user_create


class Command(BaseCommand):
    help = (
        "Create the user NAME in a role. Operators and auditors log into the console: their "
        "password comes from --password-file or a prompt. Recorders have no password: --token "
        "prints the API key their machine sends as `Authorization: Token <key>`."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", metavar="NAME")
        parser.add_argument("--role", required=True, help=f"One of {', '.join(Role.values)}.")
        parser.add_argument(
            "--token",
            action="store_true",
            help="Print the new user's API key (shown once; `issue_token --rotate` replaces it).",
        )
        parser.add_argument(
            "--password-file",
            type=Path,
            help="A file holding the password (a Docker secret); default: asked at a terminal.",
        )

    def handle(
        self, *args, username: str, role: str, token: bool, password_file: Path | None, **options
    ):
        try:
            user = user_create(
                username=username, role=role, password=self._password(role, password_file)
            )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stderr.write(
            f"User '{username}' created with the role {role}.", style_func=self.style.SUCCESS
        )
        if token:
            self.stdout.write(api_key_issue(user=user))

    def _password(self, role: str, password_file: Path | None) -> str | None:
        if password_file is not None:
            try:
                return password_file.read_text().strip()
            except OSError as error:
                raise CommandError(f"--password-file cannot be read: {error}") from error
        if role not in CONSOLE_ROLES:
            return None
        if not sys.stdin.isatty():
            raise CommandError(
                f"An {role} logs into the console with a password: give --password-file PATH, "
                "or run the command at a terminal to be asked for it."
            )
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise CommandError("The two passwords differ; nothing was created. Run it again.")
        return password
