"""The key tokens are signed with: the embedded default's own, never a published one."""

import stat
import subprocess
import sys
import time
import uuid

import jwt
import pytest
from django.conf import settings

from lucid.settings import PUBLISHED_DEVELOPMENT_KEY, local_secret_key
from tests.factories import UserFactory
from tests.support.processes import REPO


@pytest.mark.django_db
def test_a_token_signed_with_the_published_development_key_is_refused(anonymous_client):
    admin = UserFactory(username="admin-root", is_staff=True, is_superuser=True)
    now = int(time.time())
    claims = {
        "token_type": "access",
        "exp": now + 300,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "user_id": str(admin.pk),
    }
    forged = jwt.encode(claims, PUBLISHED_DEVELOPMENT_KEY, algorithm="HS256")

    response = anonymous_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert response.status_code == 401


def test_the_embedded_default_makes_its_key_once_readable_only_by_its_owner(tmp_path):
    path = tmp_path / "var" / "secret_key"

    key = local_secret_key(path)

    assert len(key) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_secret_key(path) == key
    assert local_secret_key(tmp_path / "other" / "secret_key") != key
    assert list(path.parent.iterdir()) == [path]


def test_without_a_configured_key_the_service_signs_with_its_own():
    assert settings.SECRET_KEY != PUBLISHED_DEVELOPMENT_KEY
    assert len(settings.SECRET_KEY) >= 50


def test_the_published_development_key_is_refused_at_startup(tmp_path):
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SECRET_KEY": PUBLISHED_DEVELOPMENT_KEY,
            "LUCID_STORAGE_PATH": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode != 0
    assert "published development key" in completed.stderr
