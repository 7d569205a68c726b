"""Roles of users: recorders, operators and auditors are Django groups of those names."""

from django.contrib.auth.models import AbstractBaseUser

from lucid.choices import Role


def user_roles(user: AbstractBaseUser) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_lucid_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        user._lucid_roles = cached
    return cached


def sees_only_own_sessions(user: AbstractBaseUser) -> bool:
    """A recorder and nothing more: lists show it only its own sessions."""
    return not user.is_superuser and user_roles(user) == {Role.RECORDER}


def governs_retention(user: AbstractBaseUser) -> bool:
    """Whether the user may set `legal_hold` and `retention_days` (operators, superusers)."""
    return user.is_superuser or Role.OPERATOR in user_roles(user)
