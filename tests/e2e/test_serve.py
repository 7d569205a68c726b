"""`manage.py serve` run as a process: a role refuses to start without a broker or a key."""

import pytest

from lucid.management.commands.serve import ROLES
from tests.support.processes import manage
from tests.support.server import environment

CELERY_ROLES = sorted(role for role, spec in ROLES.items() if spec.needs_broker)


@pytest.mark.parametrize("role", CELERY_ROLES)
def test_a_celery_role_refuses_to_start_without_a_broker(role, tmp_path):
    completed = manage("serve", role, env=environment(tmp_path))

    assert completed.returncode == 1
    assert "CommandError" in completed.stderr
    assert "CELERY_BROKER_URL" in completed.stderr
    assert f"The {role} role" in completed.stderr


@pytest.mark.parametrize("role", sorted(ROLES))
def test_a_role_refuses_to_start_without_a_secret_key(role, tmp_path):
    env = environment(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/15")
    del env["DJANGO_SECRET_KEY"]

    completed = manage("serve", role, env=env)

    assert completed.returncode == 1
    assert "CommandError" in completed.stderr
    assert "DJANGO_SECRET_KEY" in completed.stderr
