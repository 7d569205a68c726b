"""Fixtures shared by every test layer."""

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def user(db):
    return UserFactory(username="recorder")


@pytest.fixture
def other_user(db):
    return UserFactory(username="someone-else")


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def storage_paths(settings, tmp_path):
    """Every test gets its own empty spool and chunk store."""
    settings.LUCID_STORAGE_PATH = tmp_path / "sessions"
    settings.LUCID_CHUNK_STORE_PATH = tmp_path / "chunks"
    settings.LUCID_CHUNK_STORE_OPTIONS = {"root": str(tmp_path / "chunks")}
    settings.LUCID_TASK_RETRY_DELAY_SECONDS = 0
    return settings
