from django.db import migrations, models
from django.db.models import F


def waiting_chunks_queued_when_received(apps, schema_editor):
    """Chunks waiting at the upgrade count as queued when received: the watchdog queues them
    again only once the broker's queue is empty, not all at once."""
    Chunk = apps.get_model("chunks_app", "Chunk")
    Chunk.objects.filter(status__in=["received", "processing"]).update(queued_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("chunks_app", "0004_status_damaged"),
    ]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="queued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(waiting_chunks_queued_when_received, migrations.RunPython.noop),
    ]
