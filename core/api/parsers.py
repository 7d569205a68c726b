"""A JSON parser that answers deeply nested bodies with 400 instead of exhausting the stack."""

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def json_depth(value: Any) -> int:
    """How many arrays and objects deep `value` nests; scalars are 0."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        pending.extend((child, depth + 1) for child in children)
    return deepest


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than `max_depth`."""

    max_depth = 64

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError(self._too_deep_message()) from error
        if json_depth(data) > self.max_depth:
            raise ParseError(self._too_deep_message())
        return data

    def _too_deep_message(self) -> str:
        return f"JSON parse error - nested deeper than {self.max_depth} levels."
