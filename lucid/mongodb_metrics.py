"""Series for the MongoDB metadata store (MONGO_URL), in place of django-prometheus' `django_db_*`.

django-prometheus measures only the SQL engines it wraps; these come from the driver's own
command monitoring, in every process that talks to MongoDB.
"""

from prometheus_client import Counter, Histogram
from pymongo import monitoring

COMMAND_SECONDS = Histogram(
    "lucid_mongodb_command_seconds",
    "Time MongoDB took to answer commands (find, insert, commitTransaction, ...), by command.",
    ["command"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf")),
)
COMMAND_ERRORS = Counter(
    "lucid_mongodb_command_errors",
    "MongoDB commands that failed, by command and error (WriteConflict: retried transactions).",
    ["command", "error"],
)


class CommandMetrics(monitoring.CommandListener):
    """Observes every command's duration, and counts the failed ones."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        COMMAND_SECONDS.labels(event.command_name).observe(event.duration_micros / 1_000_000)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        COMMAND_SECONDS.labels(event.command_name).observe(event.duration_micros / 1_000_000)
        error = event.failure.get("codeName") or str(event.failure.get("code", "unknown"))
        COMMAND_ERRORS.labels(event.command_name, error).inc()


def mongodb_metrics_register() -> None:
    """Watch the commands of every MongoDB client created from now on."""
    monitoring.register(CommandMetrics())
