"""The identity cache: a caller's row and roles are read once, and every change of a user, its
groups, a role group or an API key holds on the next request."""

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from core.db import atomic
from core.selectors import user_cache_key, user_get
from core.services import api_key_issue, user_roles_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ME = "/api/v1/auth/me"
AUDIT = "/api/v1/audit"


def bearer_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def api_key_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_issue(user=user)}")
    return client


def identity_queries(client: APIClient) -> list[str]:
    """The statements a GET of /auth/me ran on the users, groups and keys tables."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ME).status_code == 200
    tables = ("auth_user", "auth_group", "authtoken_token")
    return [query["sql"] for query in queries if any(table in query["sql"] for table in tables)]


@pytest.fixture(params=["bearer", "api_key"])
def client_of(request):
    """A client authenticated as the user given, by JWT or by API key."""
    return {"bearer": bearer_client, "api_key": api_key_client}[request.param]


def test_a_callers_identity_is_read_once_then_from_the_cache(client_of):
    client = client_of(UserFactory(roles=["auditor"]))

    assert identity_queries(client)
    assert identity_queries(client) == []
    assert client.get(AUDIT).status_code == 200


def test_a_deactivated_user_is_refused_on_its_next_request(client_of):
    user = UserFactory(roles=["auditor"])
    client = client_of(user)
    assert client.get(ME).status_code == 200

    user.is_active = False
    user.save()

    response = client.get(ME)
    assert response.status_code == 401
    assert "deactivated; ask an administrator" in response.json()["message"]


def test_a_deleted_user_is_refused_on_its_next_request():
    user = UserFactory(roles=["auditor"])
    client = bearer_client(user)
    assert client.get(ME).status_code == 200

    user.delete()

    response = client.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "user_not_found"


@pytest.mark.parametrize(
    "take_away",
    [
        lambda user, group: user_roles_set(user=user, roles=["recorder"]),
        lambda user, group: user.groups.remove(group),
        lambda user, group: user.groups.clear(),
        lambda user, group: group.user_set.remove(user),
        lambda user, group: group.user_set.clear(),
        lambda user, group: group.delete(),
    ],
    ids=["roles-set", "remove", "clear", "group-remove", "group-clear", "group-delete"],
)
def test_a_role_taken_away_holds_on_the_next_request(take_away):
    user = UserFactory(roles=["operator"])
    client = bearer_client(user)
    assert client.get(AUDIT).status_code == 200

    take_away(user, Group.objects.get(name="operator"))

    assert client.get(AUDIT).status_code == 403


def test_a_role_group_renamed_takes_its_role_from_its_members():
    user = UserFactory(roles=["operator"])
    client = bearer_client(user)
    assert client.get(AUDIT).status_code == 200

    group = Group.objects.get(name="operator")
    group.name = "former operators"
    group.save()

    assert client.get(AUDIT).status_code == 403


def test_a_role_given_holds_on_the_next_request():
    user = UserFactory(roles=["recorder"])
    client = bearer_client(user)
    assert client.get(AUDIT).status_code == 403

    Group.objects.get_or_create(name="auditor")[0].user_set.add(user)

    assert client.get(AUDIT).status_code == 200


def test_a_rotated_api_key_is_refused_at_once():
    user = UserFactory(roles=["recorder"])
    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Token {api_key_issue(user=user)}")
    assert old.get(ME).status_code == 200

    api_key_issue(user=user, rotate=True)

    response = old.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_the_cache_keeps_no_password_hash_and_a_cached_user_reads_it_when_asked():
    user = UserFactory(roles=["auditor"])
    assert bearer_client(user).get(ME).status_code == 200

    cached = cache.get(user_cache_key(user.pk))
    assert "password" not in cached["columns"]
    assert user_get(user_id=user.pk).check_password("correct horse battery staple")


def test_an_identity_cached_while_a_change_commits_is_dropped_at_the_commit(
    django_capture_on_commit_callbacks,
):
    user = UserFactory(roles=["auditor"])
    client = bearer_client(user)
    assert client.get(AUDIT).status_code == 200
    before = cache.get(user_cache_key(user.pk))
    with django_capture_on_commit_callbacks(execute=True), atomic():
        user_roles_set(user=user, roles=["recorder"])
        # A request that read the row before the change committed caches it again.
        cache.set(user_cache_key(user.pk), before)

    assert client.get(AUDIT).status_code == 403
