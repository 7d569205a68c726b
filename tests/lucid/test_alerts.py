"""deploy/prometheus: the alert rules and the scrape configuration are valid, the alerts fire as
their unit tests say, and they read only series that /metrics exposes."""

from pathlib import Path

import yaml

from tests.support.promql import metric_names, promtool

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_promtool_finds_the_alert_rules_valid():
    checked = promtool("check", "rules", str(ALERTS))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_fire_as_their_unit_tests_expect():
    tested = promtool("test", "rules", str(PROMETHEUS / "alerts.test.yml"))

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_finds_the_scrape_configuration_valid():
    checked = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_reads_only_series_that_metrics_exposes(exposed_metric_names):
    unknown = {
        alert: sorted(metric_names(expression) - exposed_metric_names)
        for alert, expression in alert_expressions().items()
    }

    assert {alert: names for alert, names in unknown.items() if names} == {}
