"""The console's users: each one's roles in the list, filtered by role, set by checkboxes."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from core.choices import AuditAction
from core.models import AuditEntry
from core.roles import user_roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
USERS = "/admin/auth/user/"


@pytest.fixture
def superuser_browser() -> Client:
    browser = Client()
    browser.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return browser


def _change_form(user, **fields) -> dict:
    return {
        "username": user.username,
        "is_active": "on",
        "date_joined_0": "2026-11-01",
        "date_joined_1": "08:00:00",
        **fields,
    }


def _reloaded(username: str):
    return get_user_model().objects.get(username=username)


def test_the_user_list_shows_each_users_role(superuser_browser):
    UserFactory(username="olga", roles=["operator"])

    page = superuser_browser.get(USERS).content.decode()

    assert '<td class="field-role_names">operator</td>' in page


def test_the_user_list_filters_by_role(superuser_browser):
    UserFactory(username="recorder-7", roles=["recorder"])
    UserFactory(username="olga", roles=["operator"])

    page = superuser_browser.get(USERS, {"role": "recorder"}).content.decode()

    assert "recorder-7" in page and "olga" not in page


def test_checking_a_role_puts_the_user_in_it_and_keeps_its_other_groups(superuser_browser):
    user = UserFactory(username="olga", roles=["auditor"])
    night_shift = Group.objects.create(name="night shift")
    user.groups.add(night_shift)

    response = superuser_browser.post(
        f"{USERS}{user.pk}/change/",
        _change_form(user, roles=["operator"], groups=[night_shift.pk]),
    )

    assert response.status_code == 302
    assert user_roles(_reloaded("olga")) == {"operator"}
    assert _reloaded("olga").groups.filter(name="night shift").exists()


def test_the_change_form_shows_the_users_roles_checked(superuser_browser):
    user = UserFactory(username="olga", roles=["operator"])

    form = superuser_browser.get(f"{USERS}{user.pk}/change/").context["adminform"].form

    assert form["roles"].initial == ["operator"]


def test_a_user_added_in_the_console_gets_the_roles_checked(superuser_browser):
    response = superuser_browser.post(
        f"{USERS}add/",
        {
            "username": "audrey",
            "usable_password": "true",
            "password1": "correct horse battery staple",
            "password2": "correct horse battery staple",
            "roles": ["auditor"],
        },
    )

    assert response.status_code == 302
    assert user_roles(_reloaded("audrey")) == {"auditor"}


def test_a_users_history_button_opens_what_they_did_in_the_audit_trail(superuser_browser):
    alice = UserFactory(username="alice", roles=["auditor"])
    AuditEntry.objects.create(actor="alice", action=AuditAction.SESSION_UPDATED)
    AuditEntry.objects.create(actor="bob", action=AuditAction.SESSION_DELETED)

    response = superuser_browser.get(f"{USERS}{alice.pk}/history/", follow=True)

    assert response.redirect_chain == [("/admin/lucid/auditentry/?actor=alice", 302)]
    assert [entry.actor for entry in response.context["cl"].result_list] == ["alice"]
