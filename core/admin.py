"""The audit trail and users' roles in the operator console, and the read-only base the
consoles' lists share."""

import json
import uuid
from functools import reduce
from operator import or_

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import AbstractUser, Group
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from core.choices import Role
from core.db import is_mongodb
from core.models import AuditEntry
from core.roles import user_roles
from core.services import user_roles_set


class ReadOnlyAdmin(admin.ModelAdmin):
    """A model shown, never added, changed or deleted through the admin (view permission)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ServiceTransactionsMixin:
    """Admin changes and deletions whose services open their own transactions on MongoDB.

    Django wraps those views in its own atomic(), which django-mongodb-backend does not turn into
    a MongoDB transaction and inside which it refuses to commit ours: there the services' own
    transactions (retried on conflicts) are the only ones.
    """

    def changeform_view(
        self, request: HttpRequest, object_id=None, form_url="", extra_context=None
    ):
        if not is_mongodb():
            return super().changeform_view(request, object_id, form_url, extra_context)
        return self._changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request: HttpRequest, object_id, extra_context=None):
        if not is_mongodb():
            return super().delete_view(request, object_id, extra_context)
        return self._delete_view(request, object_id, extra_context)


def audit_trail_url(**lookups: object) -> str:
    """The audit list showing only the entries with these field values, e.g. `session_id=…`."""
    return f"{reverse('admin:lucid_auditentry_changelist')}?{urlencode(lookups)}"


class AuditHistoryMixin:
    """The History button opens the object's audit trail, not Django's log of admin edits.

    `audit_lookups` names the object's entries; whoever may not read the audit trail keeps
    Django's page.
    """

    def audit_lookups(self, obj: Model) -> dict[str, object]:
        raise NotImplementedError

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context=None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if (
            obj is None
            or not self.has_view_or_change_permission(request, obj)
            or not request.user.has_perm("lucid.view_auditentry")
        ):
            return super().history_view(request, object_id, extra_context)
        return HttpResponseRedirect(audit_trail_url(**self.audit_lookups(obj)))


class UUIDSearchMixin:
    """Admin search that also finds a whole UUID in `uuid_search_fields`, by exact match.

    Partial matches on UUID fields would need pattern lookups, which MongoDB does not have.
    """

    uuid_search_fields: tuple[str, ...] = ()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        matches, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return matches, may_have_duplicates
        exact = reduce(or_, (Q(**{field: value}) for field in self.uuid_search_fields))
        return matches | queryset.filter(exact), may_have_duplicates


@admin.register(AuditEntry)
class AuditEntryAdmin(UUIDSearchMixin, ReadOnlyAdmin):
    """Who did what, when and from where: read-only for everyone, superusers included."""

    list_display = ["at", "actor", "address", "action", "session_id", "sequence"]
    list_filter = ["action", "at"]
    search_fields = ["actor"]
    uuid_search_fields = ("session_id",)
    date_hierarchy = "at"
    show_full_result_count = False
    fields = ["id", "at", "actor", "address", "action", "session_id", "sequence", "detail_json"]
    readonly_fields = fields

    @admin.display(description="detail")
    def detail_json(self, entry: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(entry.detail, indent=2, sort_keys=True))


ROLES_HELP = (
    "What the user may do. Recorders upload through the API with a key (`manage.py issue_token "
    "NAME`); operators and auditors log into this console, which also needs “Staff status”."
)


def _roles_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=Role.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=ROLES_HELP,
    )


class UserRolesCreationForm(AdminUserCreationForm):
    roles = _roles_field()


class UserRolesChangeForm(UserChangeForm):
    """Roles as checkboxes; the groups field keeps only the groups that are no role."""

    roles = _roles_field()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["roles"].initial = sorted(user_roles(self.instance))
        groups = self.fields["groups"]
        groups.queryset = Group.objects.exclude(name__in=Role.values)
        groups.help_text = "Groups other than the roles above."


class RoleFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"
    NONE = "none"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [*Role.choices, (self.NONE, "No role")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == self.NONE:
            return queryset.exclude(groups__name__in=Role.values)
        if self.value() in Role.values:
            return queryset.filter(groups__name=self.value())
        return queryset


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class RoleUserAdmin(AuditHistoryMixin, UserAdmin):
    """Django's user admin with each user's roles shown in the list and set by checkboxes; its
    History button opens what the user did, from the audit trail."""

    form = UserRolesChangeForm
    add_form = UserRolesCreationForm
    list_display = ["username", "role_names", "is_staff", "is_active", "last_login"]
    list_filter = [RoleFilter, "is_staff", "is_superuser", "is_active"]
    fieldsets = [
        UserAdmin.fieldsets[0],
        ("Roles", {"fields": ["roles"]}),
        *UserAdmin.fieldsets[1:],
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": [*UserAdmin.add_fieldsets[0][1]["fields"], "roles"]})
    ]

    def audit_lookups(self, user: AbstractUser) -> dict[str, object]:
        return {"actor": user.username}

    @admin.display(description="roles")
    def role_names(self, user: AbstractUser) -> str:
        return ", ".join(sorted(user_roles(user))) or "–"

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        user_roles_set(user=form.instance, roles=form.cleaned_data["roles"])
