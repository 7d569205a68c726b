"""Headers that carry a count of milliseconds: `Lucid-Time-Ms`, `Lucid-Duration-Ms`."""

import re

from django.http import HttpRequest

from core.errors import ValidationFailed

TIME_MARK_HEADER = "Lucid-Time-Ms"
DURATION_HEADER = "Lucid-Duration-Ms"
# Up to 18 digits: below 2**63, what the database keeps; some 31 million years of media.
MILLISECONDS = re.compile(r"[0-9]{1,18}")


def header_milliseconds(request: HttpRequest, *, name: str, code: str) -> int | None:
    """The header's whole, non-negative milliseconds; None when absent."""
    value = request.headers.get(name)
    if value is None:
        return None
    if not MILLISECONDS.fullmatch(value.strip()):
        raise ValidationFailed(
            f"{name} must be a whole number of milliseconds (0 or more), such as 45000.",
            code=code,
            fields={name: ["Not a whole, non-negative number of milliseconds."]},
        )
    return int(value)
