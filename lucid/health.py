"""GET /health: is the service able to take and keep recordings right now?"""

from collections.abc import Callable

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chunks_app.selectors import storage_free_bytes
from chunks_app.spool import get_spool
from chunks_app.storage import get_chunk_store
from core.encryption import key_ring
from core.models import Counter
from core.sizes import MIB
from lucid.celery import app as celery_app

OK, DISABLED = "ok", "disabled"


def check_database() -> str:
    Counter.objects.exists()
    return OK


def check_storage() -> str:
    """`ok`, or which store is (nearly) full, what that does, and what to do about it."""
    minimum = settings.LUCID_HEALTH_MIN_FREE_MB * MIB
    spool = get_spool()
    stores = (
        ("chunk store", get_chunk_store(), storage_free_bytes, "chunks wait until there is room"),
        ("spool", spool, spool.free_bytes, "uploads are refused"),
    )
    full = []
    for name, store, free_bytes, consequence in stores:
        store.check_writable()
        free = free_bytes()
        if free < minimum:
            full.append(
                f"{name} full: only {free // MIB} MiB free at {store.location} (minimum "
                f"{settings.LUCID_HEALTH_MIN_FREE_MB} MiB), {consequence}"
            )
    if full:
        return "; ".join(full) + ". Free space (delete sessions, run cleanup) or grow the disk."
    return OK


def check_cache() -> str:
    if not settings.REDIS_URL:
        return OK
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()
    return OK


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return DISABLED
    with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        connection.ensure_connection(max_retries=0, timeout=1)
    return OK


def check_encryption() -> str:
    """`disabled`, or the id of the key new data is encrypted under (never key material)."""
    return key_ring().active_id or DISABLED


CHECKS: dict[str, tuple[Callable[[], str], bool]] = {
    "database": (check_database, True),
    "storage": (check_storage, True),
    "cache": (check_cache, False),
    "broker": (check_broker, True),
    "encryption": (check_encryption, False),
}


def run_checks() -> tuple[bool, dict[str, str]]:
    """Each check's result (`ok`, `disabled` or what is wrong) and whether all required pass."""
    results: dict[str, str] = {}
    healthy = True
    for name, (check, required) in CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:  # a health check reports every failure, whatever it is
            results[name] = f"{type(error).__name__}: {error}"
        if required and results[name] not in (OK, DISABLED):
            healthy = False
    return healthy, results


HealthSerializer = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "fail"]),
        "checks": inline_serializer(
            "HealthChecks",
            {name: serializers.CharField() for name in CHECKS},
        ),
    },
)


class HealthView(APIView):
    """Database, storage, cache and broker checks and the encryption key; 503 when a required
    one fails."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        summary="Health of the service",
        description=(
            "`cache` is reported but not required: without it the service is slower. "
            "`encryption` is `disabled` or the id of the key new data is encrypted under."
        ),
        responses={200: HealthSerializer, 503: HealthSerializer},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        healthy, checks = run_checks()
        return Response(
            {"status": "ok" if healthy else "fail", "checks": checks},
            status=200 if healthy else 503,
        )
