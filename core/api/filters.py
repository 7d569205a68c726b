"""The filter backend of every list, and the check that a list's query names only what it reads."""

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.request import Request
from rest_framework.settings import api_settings

from core.errors import ValidationFailed


class FilterBackend(DjangoFilterBackend):
    """Builds and validates the view's filterset (a Django form) only if the request names one of
    its filters: an unfiltered list, the common case, skips work that would change nothing."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view) -> QuerySet:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not any(
            parameter.startswith(name)
            for parameter in request.query_params
            for name in filterset_class.base_filters
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def parameter_names(self, view) -> set[str]:
        filterset_class = self.get_filterset_class(view)
        return set(filterset_class.base_filters) if filterset_class is not None else set()


def _filter_parameter_names(view) -> set[str]:
    names: set[str] = set()
    for backend_class in getattr(view, "filter_backends", ()):
        backend = backend_class()
        if isinstance(backend, FilterBackend):
            names |= backend.parameter_names(view)
        else:
            parameters = backend.get_schema_operation_parameters(view)
            names |= {parameter["name"] for parameter in parameters}
    return names


def query_parameters_check(request: Request, view, *, paginator_parameters: set[str]) -> None:
    """A 400 `unknown_parameter` naming the known ones when the query has a parameter the list
    does not read: a misspelt filter would otherwise list everything.

    Known: the paginator's, the filter backends' (filters, `search`, `ordering`), the format
    override and the view's own `query_parameters`.
    """
    known = {
        *paginator_parameters,
        *_filter_parameter_names(view),
        *getattr(view, "query_parameters", ()),
    }
    if api_settings.URL_FORMAT_OVERRIDE:
        known.add(api_settings.URL_FORMAT_OVERRIDE)
    unknown = sorted(set(request.query_params) - known)
    if not unknown:
        return
    listed = ", ".join(sorted(known))
    raise ValidationFailed(
        f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
        f"This list takes: {listed}.",
        code="unknown_parameter",
        fields={name: [f"Unknown query parameter; this list takes: {listed}."] for name in unknown},
    )
