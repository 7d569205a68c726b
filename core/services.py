"""Identities: users in their roles, and the API keys recorder machines authenticate with."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from rest_framework.authtoken.models import Token

from core.choices import Role
from core.db import atomic, on_commit
from core.errors import Conflict, ValidationFailed
from core.roles import roles_grant
from core.selectors import api_key_cache_key, user_cache_key

# Roles whose members log into the operator console: they are staff and need a password.
CONSOLE_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR})


def _role_groups(roles: Iterable[str]) -> list[Group]:
    """The groups of `roles`, made with their grants if a database lacks them."""
    wanted = set(roles)
    groups = list(Group.objects.filter(name__in=wanted))
    if len(groups) < len(wanted):
        roles_grant(group_model=Group, permission_model=Permission)
        groups = list(Group.objects.filter(name__in=wanted))
    return groups


def _role_check(role: str) -> None:
    if role not in Role.values:
        raise ValidationFailed(
            f"Unknown role '{role}': choose one of {', '.join(Role.values)}.",
            code="unknown_role",
        )


def user_create(*, username: str, role: str, password: str | None = None) -> AbstractUser:
    """A user in `role`. Operators and auditors are staff with a password (they log into the
    console); a recorder needs none, its machine authenticates with an API key."""
    _role_check(role)
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise Conflict(
            f"A user named '{username}' exists already. Choose another name, or change its "
            f"role in the console (Access › Users) and give it a key with "
            f"`manage.py issue_token {username}`.",
            code="user_exists",
        )
    user = user_model(username=username, is_staff=role in CONSOLE_ROLES)
    try:
        user.full_clean(exclude=["password"], validate_unique=False)
    except ValidationError as error:
        raise ValidationFailed(
            f"The name '{username}' is not allowed: {' '.join(error.messages)}",
            code="invalid_username",
        ) from error
    if role in CONSOLE_ROLES and not password:
        raise ValidationFailed(
            f"An {role} logs into the console with a password; give one.",
            code="password_required",
        )
    if password:
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise ValidationFailed(
                f"The password is refused: {' '.join(error.messages)}", code="weak_password"
            ) from error
        user.set_password(password)
    else:
        user.set_unusable_password()
    try:
        with atomic():
            user.save()
            user.groups.set(_role_groups([role]))
    except IntegrityError as error:
        raise Conflict(f"A user named '{username}' exists already.", code="user_exists") from error
    return user


def user_roles_set(*, user: AbstractUser, roles: Iterable[str]) -> None:
    """Put `user` in exactly `roles`, leaving its other groups as they are."""
    roles = set(roles)
    for role in roles:
        _role_check(role)
    user.groups.remove(*user.groups.filter(name__in=Role.values).exclude(name__in=roles))
    user.groups.add(*_role_groups(roles))
    user.__dict__.pop("_lucid_roles", None)


def api_key_issue(*, user: AbstractUser, rotate: bool = False) -> str:
    """The key `user` sends as `Authorization: Token <key>`, made if it has none; `rotate`
    revokes the current key first."""
    if rotate:
        Token.objects.filter(user=user).delete()
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def identities_forget(*, user_ids: Iterable[object] = (), api_keys: Iterable[str] = ()) -> None:
    """Drop the cached identities of these users and keys, now and again once the change that
    called this commits (a request reading the old row meanwhile may have cached it again)."""
    keys = [user_cache_key(user_id) for user_id in user_ids]
    keys += [api_key_cache_key(key) for key in api_keys]
    if not keys:
        return
    cache.delete_many(keys)
    on_commit(lambda: cache.delete_many(keys))
