"""Roles of users: recorders, operators and auditors are Django groups of those names."""

from django.contrib.auth.models import AbstractBaseUser

from core.choices import Role

# role -> (app label, model, permission verbs)
ROLE_PERMISSIONS = {
    "recorder": [],
    "operator": [
        ("sessions_app", "session", ("view", "change", "delete")),
        ("chunks_app", "chunk", ("view",)),
        ("pipeline_app", "pipeline", ("view", "change")),
        ("lucid", "auditentry", ("view",)),
        ("django_celery_beat", "periodictask", ("view", "change")),
    ],
    "auditor": [
        ("sessions_app", "session", ("view",)),
        ("chunks_app", "chunk", ("view",)),
        ("pipeline_app", "pipeline", ("view",)),
        ("lucid", "auditentry", ("view",)),
    ],
}


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


def roles_grant(*, group_model: type, permission_model: type) -> None:
    """Create the role groups and give each the admin permissions ROLE_PERMISSIONS lists."""
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        for app_label, model, verbs in grants:
            group.permissions.add(
                *permission_model.objects.filter(
                    content_type__app_label=app_label,
                    codename__in=[f"{verb}_{model}" for verb in verbs],
                )
            )
