"""Roles on the API: recorders their own sessions, operators everything, auditors reading."""

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from core.choices import Role
from core.roles import user_roles


def _operation(request: Request, view) -> str:
    """The viewset action (`list`, `start`…) or, for a plain view, the HTTP method."""
    method = "get" if request.method == "HEAD" else request.method.lower()
    return getattr(view, "action", None) or method


class RolePermission(BasePermission):
    """Superusers and operators may do anything; auditors read; recorders what a view allows.

    A view lists in `recorder_operations` the actions or methods a recorder may use, on its own
    sessions only (checked per object). A user in no role may use no route.
    """

    message = "Your role does not allow this; ask an administrator for the right role."

    def has_permission(self, request: Request, view) -> bool:
        user = request.user
        if user.is_superuser:
            return True
        roles = user_roles(user)
        if Role.OPERATOR in roles:
            return True
        if Role.AUDITOR in roles and request.method in SAFE_METHODS:
            return True
        return Role.RECORDER in roles and _operation(request, view) in getattr(
            view, "recorder_operations", ()
        )

    def has_object_permission(self, request: Request, view, obj) -> bool:
        user = request.user
        if user.is_superuser or user_roles(user) & {Role.OPERATOR, Role.AUDITOR}:
            return True
        return getattr(obj, "owner_id", None) == user.pk
