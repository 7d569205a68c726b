"""Query filters of the session list."""

import django_filters
from django import forms
from django_filters.rest_framework import BooleanFilter

from sessions_app.choices import SessionStatus
from sessions_app.models import Session


class IPAddressFilter(django_filters.CharFilter):
    """An exact IPv4 or IPv6 address, normalized as stored; anything else is a 400."""

    field_class = forms.GenericIPAddressField


class SessionFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SessionStatus.choices)
    owner = django_filters.CharFilter(field_name="owner__username", help_text="Owner's username.")
    host = django_filters.CharFilter()
    remote_user = django_filters.CharFilter(help_text="The account on the recorded host.")
    client_address = IPAddressFilter(help_text="The RDP client's IPv4 or IPv6 address.")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    complete = BooleanFilter(
        help_text="`true`: stopped with no sequence missing; `false`: the others."
    )

    class Meta:
        model = Session
        fields = [
            "status",
            "owner",
            "host",
            "remote_user",
            "client_address",
            "created_after",
            "created_before",
            "complete",
        ]
