"""Quantities as operators read them: sizes in binary units, times, durations and ratios."""

from datetime import timedelta

SIZE_UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"]


def size_text(size: int | None) -> str:
    """`512 bytes`, `1.0 KiB`, `12.3 MiB`; `-` for no size."""
    if size is None:
        return "-"
    if abs(size) < 1024:
        return f"{size} bytes"
    value, exponent = size / 1024, 0
    while abs(round(value, 1)) >= 1024 and exponent < len(SIZE_UNITS) - 1:
        value, exponent = value / 1024, exponent + 1
    return f"{value:.1f} {SIZE_UNITS[exponent]}"


def ratio_text(size: int | None, compressed_size: int | None) -> str:
    """Raw bytes per stored byte: `3.2×` means a third is kept; `-` before anything is stored."""
    if not size or not compressed_size:
        return "-"
    ratio = size / compressed_size
    return f"{ratio:.1f}×" if ratio < 100 else f"{ratio:.0f}×"


def duration_text(duration: timedelta | float | None) -> str:
    """A duration (or seconds) to the second: `12 s`, `4 min 05 s`, `1 h 02 min`, `3 d 04 h`."""
    if duration is None:
        return "-"
    seconds = round(duration.total_seconds() if isinstance(duration, timedelta) else duration)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days} d {hour:02d} h"
    if hours:
        return f"{hours} h {minute:02d} min"
    if minutes:
        return f"{minutes} min {second:02d} s"
    return f"{seconds} s"


def milliseconds_text(milliseconds: float | None) -> str:
    """A short time such as processing one chunk: `0.4 ms`, `340 ms`, `1.2 s`, `2 min 05 s`."""
    if milliseconds is None:
        return "-"
    if milliseconds < 10:
        return f"{milliseconds:.1f} ms"
    if round(milliseconds) < 1000:
        return f"{milliseconds:.0f} ms"
    if round(milliseconds / 1000, 1) < 60:
        return f"{milliseconds / 1000:.1f} s"
    return duration_text(milliseconds / 1000)
