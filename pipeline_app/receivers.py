"""How pipelines follow sessions and chunks: one pipeline per session, new chunks queued."""

import uuid

from django.db.models.signals import post_save
from django.dispatch import receiver

from chunks_app.signals import chunks_received
from pipeline_app.services import chunks_enqueue, pipeline_create
from sessions_app.models import Session


@receiver(post_save, sender=Session, dispatch_uid="pipeline_app.pipeline_create")
def pipeline_create_with_session(*, instance: Session, created: bool, raw: bool, **kwargs) -> None:
    """Every new session gets its running pipeline in the same transaction."""
    if created and not raw:
        pipeline_create(session=instance)


@receiver(chunks_received, dispatch_uid="pipeline_app.chunks_enqueue")
def chunks_enqueue_received(*, chunk_ids: list[uuid.UUID], **kwargs) -> None:
    chunks_enqueue(chunk_ids=chunk_ids)
