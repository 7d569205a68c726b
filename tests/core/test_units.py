"""Sizes, ratios, durations and short times as the admin prints them."""

from datetime import timedelta

import pytest
from django.template import Context, Template

from core.units import duration_text, milliseconds_text, ratio_text, size_text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "-"),
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (12_897_485, "12.3 MiB"),
        (1024**2 - 1, "1.0 MiB"),
        (5 * 1024**4, "5.0 TiB"),
    ],
)
def test_sizes_are_in_binary_units_with_one_decimal(size, text):
    assert size_text(size) == text


@pytest.mark.parametrize(
    ("size", "compressed_size", "text"),
    [
        (3200, 1000, "3.2×"),
        (1000, 1000, "1.0×"),
        (100_000, 400, "250×"),
        (0, 0, "-"),
        (10, None, "-"),
    ],
)
def test_ratios_are_raw_bytes_per_stored_byte(size, compressed_size, text):
    assert ratio_text(size, compressed_size) == text


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (None, "-"),
        (12.4, "12 s"),
        (245, "4 min 05 s"),
        (timedelta(hours=1, minutes=2, seconds=29), "1 h 02 min"),
        (timedelta(days=3, hours=4, minutes=59), "3 d 04 h"),
    ],
)
def test_durations_name_their_two_largest_units(duration, text):
    assert duration_text(duration) == text


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (None, "-"),
        (0.42, "0.4 ms"),
        (340.2, "340 ms"),
        (999.7, "1.0 s"),
        (1234.5, "1.2 s"),
        (125_000, "2 min 05 s"),
    ],
)
def test_short_times_are_in_milliseconds_or_seconds(milliseconds, text):
    assert milliseconds_text(milliseconds) == text


def test_templates_format_with_the_same_filters():
    template = Template(
        "{% load units %}{{ size|size }} · {{ took|milliseconds }} · {{ d|duration }}"
    )

    text = template.render(Context({"size": 3 * 1024**2, "took": 1500, "d": 3725}))

    assert text == "3.0 MiB · 1.5 s · 1 h 02 min"
