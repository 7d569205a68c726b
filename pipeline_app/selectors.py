"""Reads of pipelines: the state and counts of a session's processing, the broker's queue."""

from django.db.models import Count, Q, Sum
from kombu.exceptions import ChannelError

from chunks_app.models import Chunk
from core.choices import ChunkStatus
from pipeline_app import tasks
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


def chunk_tasks_in_queue() -> int:
    """Messages waiting in the broker's queue of chunk tasks (none when there is no queue)."""
    app = tasks.chunk_process_task.app
    with app.connection_for_read() as connection:
        try:
            declared = connection.default_channel.queue_declare(
                queue=app.conf.task_default_queue, passive=True
            )
        except ChannelError:
            return 0
    return declared.message_count
