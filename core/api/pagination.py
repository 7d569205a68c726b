"""Keyset pagination: stable while rows are added, and as fast on page 5,000 as on page 1."""

import base64
import binascii
import json
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from core.api.filters import query_parameters_check
from core.errors import ValidationFailed


class KeysetPagination(BasePagination):
    """Pages ordered by one field and the primary key, addressed by an opaque cursor.

    A view sets `ordering` (its default order); an `OrderingFilter` on the view may change it.
    A view whose ordering field is unique within the listed rows sets `ordering_is_unique`, so
    the primary key is not needed as a tie-breaker. A list is what is paginated, so the query
    parameters are checked here: one the list does not read is a 400.
    """

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset: QuerySet, request: Request, view=None) -> list[Any]:
        query_parameters_check(
            request,
            view,
            paginator_parameters={self.cursor_query_param, self.page_size_query_param},
        )
        self.request = request
        self.page_size = self._page_size(request)
        self.field, self.descending = self._ordering(request, queryset, view)
        self.unique = getattr(view, "ordering_is_unique", False)
        cursor = self._decode_cursor(request)
        backwards = cursor is not None and cursor["d"] == "p"

        rows = queryset.order_by(*self._order_by(reverse=backwards))
        if cursor is not None:
            rows = rows.filter(self._after(queryset, cursor, reverse=backwards))
        page = list(rows[: self.page_size + 1])
        has_more = len(page) > self.page_size
        page = page[: self.page_size]
        if backwards:
            page.reverse()
            self.has_next, self.has_previous = True, has_more
        else:
            self.has_next, self.has_previous = has_more, cursor is not None
        self.page = page
        return page

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_next_link(self) -> str | None:
        if not self.has_next or not self.page:
            return None
        return self._link(self.page[-1], direction="n")

    def get_previous_link(self) -> str | None:
        if not self.has_previous:
            return None
        if not self.page:
            return remove_query_param(self.request.build_absolute_uri(), self.cursor_query_param)
        return self._link(self.page[0], direction="p")

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position from a `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Items per page (at most {settings.LUCID_MAX_PAGE_SIZE}).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]

    def _page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return settings.REST_FRAMEWORK["PAGE_SIZE"]
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationFailed(
                "page_size must be a positive integer.",
                fields={"page_size": ["A positive integer is required."]},
            )
        return min(size, settings.LUCID_MAX_PAGE_SIZE)

    @staticmethod
    def _ordering(request: Request, queryset: QuerySet, view) -> tuple[str, bool]:
        ordering = None
        for backend in getattr(view, "filter_backends", ()):
            if issubclass(backend, OrderingFilter):
                ordering = backend().get_ordering(request, queryset, view)
        ordering = ordering or getattr(view, "ordering", None) or ("-pk",)
        first = ordering[0] if isinstance(ordering, list | tuple) else ordering
        return first.lstrip("-"), first.startswith("-")

    def _order_by(self, *, reverse: bool) -> list[str]:
        descending = self.descending != reverse
        prefix = "-" if descending else ""
        fields = [self.field] if self.unique else [self.field, "pk"]
        return [prefix + field for field in fields]

    def _after(self, queryset: QuerySet, cursor: dict, *, reverse: bool) -> Q:
        descending = self.descending != reverse
        lookup = "lt" if descending else "gt"
        value = self._to_python(queryset, cursor["v"])
        if self.unique:
            return Q(**{f"{self.field}__{lookup}": value})
        return Q(**{f"{self.field}__{lookup}": value}) | Q(
            **{self.field: value, f"pk__{lookup}": self._pk_to_python(queryset, cursor["k"])}
        )

    def _to_python(self, queryset: QuerySet, raw: Any) -> Any:
        try:
            return queryset.model._meta.get_field(self.field).to_python(raw)
        except Exception as error:
            raise self._invalid_cursor() from error

    def _pk_to_python(self, queryset: QuerySet, raw: Any) -> Any:
        try:
            return queryset.model._meta.pk.to_python(raw)
        except Exception as error:
            raise self._invalid_cursor() from error

    def _link(self, row: Any, *, direction: str) -> str:
        value = getattr(row, self.field)
        position = {
            "d": direction,
            "v": value.isoformat() if hasattr(value, "isoformat") else value,
            "k": str(row.pk),
        }
        token = base64.urlsafe_b64encode(json.dumps(position).encode()).decode()
        return replace_query_param(
            self.request.build_absolute_uri(), self.cursor_query_param, token
        )

    def _decode_cursor(self, request: Request) -> dict | None:
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        try:
            cursor = json.loads(base64.urlsafe_b64decode(raw.encode()))
        except (binascii.Error, ValueError, UnicodeError) as error:
            raise self._invalid_cursor() from error
        if not isinstance(cursor, dict) or cursor.get("d") not in ("n", "p"):
            raise self._invalid_cursor()
        if not self._is_position(cursor.get("v")) or not isinstance(cursor.get("k"), str):
            raise self._invalid_cursor()
        if "\x00" in cursor["k"]:
            raise self._invalid_cursor()
        return cursor

    @staticmethod
    def _is_position(value: Any) -> bool:
        """Whether `value` could be an ordering value written by `_link`."""
        if isinstance(value, str):
            return "\x00" not in value
        return isinstance(value, int | float) and not isinstance(value, bool)

    @staticmethod
    def _invalid_cursor() -> ValidationFailed:
        return ValidationFailed(
            "The cursor is not valid; follow the `next` or `previous` link as given.",
            code="invalid_cursor",
            fields={"cursor": ["Invalid cursor."]},
        )
