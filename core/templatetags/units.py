"""Template filters of core.units: `{% load units %}` then `{{ value|size }}`, `|duration`."""

from django import template

from core.units import duration_text, milliseconds_text, size_text

register = template.Library()
register.filter("size", size_text)
register.filter("duration", duration_text)
register.filter("milliseconds", milliseconds_text)
