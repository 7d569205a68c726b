"""How chunks follow what happens to their session."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from chunks_app.services import session_files_delete_on_commit
from sessions_app.models import Session


@receiver(post_delete, sender=Session, dispatch_uid="chunks_app.session_files_delete")
def session_files_delete_with_session(*, instance: Session, **kwargs) -> None:
    """A deleted session's spooled and stored files go once the deletion commits."""
    session_files_delete_on_commit(session_id=instance.pk)
