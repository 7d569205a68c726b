"""The metric names a PromQL expression reads, those a /metrics scrape exposes, and promtool."""

import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

# Series Prometheus makes itself for every target it scrapes.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
STRING = re.compile(r'"(?:\\.|[^"\\])*"' + r"|'(?:\\.|[^'\\])*'")
LABEL_MATCHERS = re.compile(r"\{[^}]*\}")
RANGE = re.compile(r"\[[^\]]*\]")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
NAME = re.compile(r"(?<![\w.$])[A-Za-z_:][\w:]*")


def metric_names(expression: str) -> set[str]:
    """The series names in `expression` as written (`…_bucket`, `…_total`): what is left once
    strings, label matchers, ranges and grouping label lists are gone, less function names
    (followed by a parenthesis) and keywords."""
    text = STRING.sub('""', expression)
    for pattern in (LABEL_MATCHERS, RANGE, GROUPING):
        text = pattern.sub(" ", text)
    return {
        match.group()
        for match in NAME.finditer(text)
        if match.group().lower() not in KEYWORDS and not _called(text, match.end())
    }


def _called(text: str, end: int) -> bool:
    return text[end:].lstrip().startswith("(")


def exposed_names(exposition: str) -> set[str]:
    """Every sample name of a /metrics body, and the series Prometheus adds to each scrape."""
    return SCRAPE_SERIES | {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def promtool(*arguments: str) -> subprocess.CompletedProcess:
    """Prometheus' `promtool`; a test fails saying what to install when it is missing."""
    program = shutil.which("promtool")
    if program is None:
        pytest.fail(
            "promtool is not installed: `apt-get install --no-install-recommends prometheus` "
            "(Debian) provides /usr/bin/promtool; .ci/run installs it (ensure_promtool)."
        )
    return subprocess.run([program, *arguments], capture_output=True, text=True, timeout=120)
