"""deploy/prometheus: the alert rules and the scrape configuration are valid, the alerts fire as
their unit tests say, and they read only series that /metrics exposes."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.promql import metric_names

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"


def promtool(*arguments: str) -> subprocess.CompletedProcess:
    """`promtool` run in deploy/prometheus; a failure names what to install when it is missing."""
    program = shutil.which("promtool")
    if program is None:
        pytest.fail(
            "promtool is not installed: `apt-get install --no-install-recommends prometheus` "
            "(Debian) provides /usr/bin/promtool; .ci/run installs it (ensure_promtool)."
        )
    return subprocess.run(
        [program, *arguments], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_promtool_finds_the_alert_rules_valid():
    checked = promtool("check", "rules", ALERTS.name)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_fire_as_their_unit_tests_expect():
    tested = promtool("test", "rules", "alerts.test.yml")

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_finds_the_scrape_configuration_valid():
    checked = promtool("check", "config", "prometheus.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_reads_only_series_that_metrics_exposes(exposed_metric_names):
    unknown = {
        alert: sorted(metric_names(expression) - exposed_metric_names)
        for alert, expression in alert_expressions().items()
    }

    assert {alert: names for alert, names in unknown.items() if names} == {}
