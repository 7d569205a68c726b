"""Reads of pipelines: the state and counts of a session's processing."""

from django.db.models import Count, Q, Sum

from chunks_app.models import Chunk
from core.choices import ChunkStatus
from pipeline_app.models import Pipeline
from sessions_app.models import Session


def pipeline_status(*, session: Session) -> dict:
    pipeline = Pipeline.objects.get(session=session)
    waiting = Q(status__in=[ChunkStatus.RECEIVED, ChunkStatus.PROCESSING])
    totals = Chunk.objects.filter(session=session).aggregate(
        **{status: Count("pk", filter=Q(status=status)) for status in ChunkStatus.values},
        backlog_bytes=Sum("size", filter=waiting, default=0),
    )
    return {"state": pipeline.state, "last_error": pipeline.last_error, **totals}
