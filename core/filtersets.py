"""Query filters of the audit trail."""

import django_filters

from core.choices import AuditAction
from core.models import AuditEntry


class AuditEntryFilterSet(django_filters.FilterSet):
    session = django_filters.UUIDFilter(field_name="session_id")
    user = django_filters.CharFilter(field_name="actor", help_text="The actor's username.")
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    after = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    before = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = ["session", "user", "action", "after", "before"]
