"""Roles on the API: recorders their own sessions, operators everything, auditors reading."""

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from core.choices import Role
from core.errors import NotFound
from core.roles import user_roles


def _operation(request: Request, view) -> str:
    """The viewset action (`list`, `start`…) or, for a plain view, the HTTP method."""
    method = "get" if request.method == "HEAD" else request.method.lower()
    return getattr(view, "action", None) or method


def _recorder_may(request: Request, view) -> bool:
    """Whether the view lets a recorder use this action or method (on its own sessions)."""
    return _operation(request, view) in getattr(view, "recorder_operations", ())


class RolePermission(BasePermission):
    """Superusers and operators may do anything; auditors read; recorders what a view allows.

    A view lists in `recorder_operations` the actions or methods a recorder may use, on its own
    sessions only (checked per object). Roles combine as the union of what each allows, per
    method and per object. A session the caller may not even read answers 404, as an unknown id
    does. A user in no role may use no route.
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
        return Role.RECORDER in roles and _recorder_may(request, view)

    def has_object_permission(self, request: Request, view, obj) -> bool:
        user = request.user
        if user.is_superuser:
            return True
        roles = user_roles(user)
        own = Role.RECORDER in roles and getattr(obj, "owner_id", None) == user.pk
        if (
            Role.OPERATOR in roles
            or (Role.AUDITOR in roles and request.method in SAFE_METHODS)
            or (own and _recorder_may(request, view))
        ):
            return True
        if own or Role.AUDITOR in roles:
            return False
        session_id = view.kwargs.get("session_id") or view.kwargs.get("pk") or obj.pk
        raise NotFound(f"No session with id '{session_id}'.")
