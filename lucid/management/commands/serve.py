"""Run one of the service's roles in the foreground: api, recorder, processor, storage, pipeline."""

import os
import sys
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


@dataclass(frozen=True)
class RoleSpec:
    """How a role runs, and the port of the original design it answers /health on."""

    port: int
    program: tuple[str, ...]
    needs_broker: bool


ROLES = {
    "api": RoleSpec(8080, ("gunicorn", "lucid.wsgi", "--config", "lucid/gunicorn.conf.py"), False),
    "storage": RoleSpec(
        8081,
        ("celery", "-A", "lucid", "worker", "-Q", "storage", "-n", "storage@%h", "-l", "INFO"),
        True,
    ),
    "pipeline": RoleSpec(8082, ("celery", "-A", "lucid", "beat", "-l", "INFO"), True),
    "recorder": RoleSpec(
        8083, ("gunicorn", "lucid.wsgi", "--config", "lucid/gunicorn.conf.py"), False
    ),
    "processor": RoleSpec(
        8084,
        ("celery", "-A", "lucid", "worker", "-Q", "processing", "-n", "processor@%h", "-l", "INFO"),
        True,
    ),
}


def role_port(role: str) -> int:
    """The role's port: LUCID_<ROLE>_PORT, else the original design's."""
    return int(os.environ.get(f"LUCID_{role.upper()}_PORT", ROLES[role].port))


class Command(BaseCommand):
    help = "Run a role of the service in the foreground (replaces this process)."

    def add_arguments(self, parser):
        parser.add_argument("role", choices=sorted(ROLES))

    def handle(self, *args, role: str, **options):
        spec = ROLES[role]
        if not (os.environ.get("DJANGO_SECRET_KEY") or os.environ.get("DJANGO_SECRET_KEY_FILE")):
            raise CommandError(
                f"The {role} role signs and checks tokens with DJANGO_SECRET_KEY: set it (or "
                "DJANGO_SECRET_KEY_FILE, a file holding it) to the same long random value for "
                "every role, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
            )
        if spec.needs_broker and settings.CELERY_TASK_ALWAYS_EAGER:
            raise CommandError(
                f"The {role} role is a Celery process: set CELERY_BROKER_URL "
                "(e.g. redis://127.0.0.1:6379/1) for it and for the api and recorder roles."
            )
        port = role_port(role)
        environment = {**os.environ, "LUCID_ROLE": role}
        if spec.program[0] == "gunicorn":
            environment["PORT"] = str(port)
        else:
            environment["LUCID_HEALTH_PORT"] = str(port)
        program = os.path.join(os.path.dirname(sys.executable), spec.program[0])
        self.stdout.write(f"{role}: {' '.join(spec.program)} on port {port}")
        self.stdout.flush()
        os.execve(program, [program, *spec.program[1:]], environment)
