"""Startup with encryption keys: a bad configuration is refused by every role and `check` with a
message saying what to fix, a good one is served, and no output ever shows key material."""

import json
import re

import pytest

from core.encryption import KEY_BYTES, generate_key_line, load_key_ring
from lucid.management.commands.serve import ROLES
from tests.support.processes import manage
from tests.support.server import LucidServer, environment, served

LINE_A = generate_key_line("A")
MATERIAL_A = LINE_A.split(":", 1)[1]
SHORT_A = MATERIAL_A[:-8]
BAD_CONFIGURATIONS = {
    "active-key-missing": (
        {"LUCID_ENCRYPTION_KEYS": LINE_A, "LUCID_ENCRYPTION_ACTIVE_KEY": "B"},
        "LUCID_ENCRYPTION_ACTIVE_KEY names key 'B', which is not configured",
    ),
    "malformed-key": (
        {"LUCID_ENCRYPTION_KEYS": f"A:{SHORT_A}", "LUCID_ENCRYPTION_ACTIVE_KEY": "A"},
        f"Key 'A' (entry 1 of LUCID_ENCRYPTION_KEYS) is not the base64 of exactly {KEY_BYTES}",
    ),
    "keys-without-active-key": (
        {"LUCID_ENCRYPTION_KEYS": LINE_A},
        "LUCID_ENCRYPTION_ACTIVE_KEY is not set",
    ),
}


@pytest.fixture(params=list(BAD_CONFIGURATIONS))
def bad_configuration(request) -> tuple[dict[str, str], str]:
    """Settings that cannot be used, and what the refusal says."""
    return BAD_CONFIGURATIONS[request.param]


def assert_no_key_material(output: str) -> None:
    assert MATERIAL_A not in output
    assert SHORT_A not in output


def test_check_refuses_a_bad_key_configuration(tmp_path, bad_configuration):
    variables, message = bad_configuration

    completed = manage("check", env=environment(tmp_path, **variables))

    assert completed.returncode == 1
    assert "lucid.E001" in completed.stderr
    assert message in completed.stderr
    assert_no_key_material(completed.stdout + completed.stderr)


def test_serve_api_refuses_a_bad_key_configuration(tmp_path, bad_configuration):
    variables, message = bad_configuration

    completed = manage("serve", "api", env=environment(tmp_path, **variables))

    assert completed.returncode == 1
    assert message in completed.stderr
    assert_no_key_material(completed.stdout + completed.stderr)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_role_refuses_a_key_that_is_not_configured(tmp_path, role):
    variables, message = BAD_CONFIGURATIONS["active-key-missing"]

    completed = manage("serve", role, env=environment(tmp_path, **variables))

    assert completed.returncode == 1
    assert message in completed.stderr
    assert_no_key_material(completed.stdout + completed.stderr)


def test_gunicorn_started_directly_refuses_a_bad_key_configuration(tmp_path, bad_configuration):
    variables, message = bad_configuration
    lucid = LucidServer(tmp_path, **variables)

    try:
        with pytest.raises(AssertionError, match=r"gunicorn exited with [1-9]"):
            lucid.start()
    finally:
        lucid.kill()

    assert message in lucid.log()
    assert_no_key_material(lucid.log())


def test_a_keys_file_others_may_read_is_accepted_with_a_warning(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"# lucid\n{LINE_A}\n")
    keys.chmod(0o644)
    env = environment(
        tmp_path, LUCID_ENCRYPTION_KEYS_FILE=str(keys), LUCID_ENCRYPTION_ACTIVE_KEY="A"
    )

    completed = manage("check", env=env)

    assert completed.returncode == 0
    assert "lucid.W001" in completed.stderr
    assert f"chmod 600 {keys}" in completed.stderr
    assert_no_key_material(completed.stdout + completed.stderr)


def test_a_good_key_configuration_is_served_and_health_names_the_active_key(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"{LINE_A}\n{generate_key_line('B')}\n")
    keys.chmod(0o600)

    with served(
        tmp_path, LUCID_ENCRYPTION_KEYS_FILE=str(keys), LUCID_ENCRYPTION_ACTIVE_KEY="B"
    ) as lucid:
        status, body = lucid.client().request("GET", "/health")

    assert status == 200
    assert json.loads(body)["checks"]["encryption"] == "B"
    for material in re.findall(r":(\S+)", keys.read_text()):
        assert material not in lucid.log()
        assert material.encode() not in body


def test_generate_key_prints_a_valid_line_even_when_the_configuration_is_broken(tmp_path):
    variables, _ = BAD_CONFIGURATIONS["malformed-key"]

    completed = manage("generate_key", "key-2025", env=environment(tmp_path, **variables))

    assert completed.returncode == 0
    line = completed.stdout.strip()
    assert re.fullmatch(r"key-2025:[A-Za-z0-9+/]{43}=", line)
    assert load_key_ring(keys=line, active_key="key-2025").key_ids == ["key-2025"]
    assert line not in completed.stderr
