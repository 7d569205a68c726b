"""deploy/grafana/lucid.json: every query is valid PromQL and reads only series that /metrics
exposes, and the dashboard charts what operators watch."""

import json
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.support.promql import metric_names, promtool

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "lucid.json"
# Grafana's interval variables, as a range promtool can parse.
GRAFANA_INTERVALS = ("$__rate_interval", "$__interval", "$__range")
WATCHED = {
    "lucid_bytes_received_total",
    "lucid_bytes_stored_total",
    "lucid_pipeline_backlog_bytes",
    "lucid_chunks",
    "lucid_storage_used_bytes",
    "lucid_storage_free_bytes",
    "lucid_storage_used_ratio",
    "lucid_storage_high_watermark_ratio",
    "lucid_backup_last_success_timestamp_seconds",
    "django_http_requests_latency_seconds_by_view_method_bucket",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
}


def panels(container: dict) -> Iterator[dict]:
    for panel in container.get("panels", []):
        yield panel
        yield from panels(panel)


def expressions() -> dict[str, str]:
    """Each query, by panel title and query id."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} {target['refId']}": target["expr"]
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    }


def test_every_query_reads_only_series_that_metrics_exposes(exposed_metric_names):
    unknown = {
        query: sorted(metric_names(expression) - exposed_metric_names)
        for query, expression in expressions().items()
    }

    assert {query: names for query, names in unknown.items() if names} == {}


def test_every_query_is_valid_promql(tmp_path):
    rules = []
    for number, expression in enumerate(expressions().values()):
        for variable in GRAFANA_INTERVALS:
            expression = expression.replace(variable, "5m")
        rules.append({"record": f"dashboard:query_{number}", "expr": expression})
    rules_file = tmp_path / "dashboard.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    checked = promtool("check", "rules", str(rules_file))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_charts_ingest_backlog_storage_backup_latency_and_processes():
    charted = set().union(*map(metric_names, expressions().values()))

    assert WATCHED - charted == set()
