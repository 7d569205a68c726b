from django.db import migrations, models
from django.db.models import Count, F, Max, Q

BATCH = 1000


def mark_complete(apps, schema_editor):
    """Set `complete` on stopped sessions whose chunks are numbered 0…n−1 (or that have none)."""
    Session = apps.get_model("sessions_app", "Session")
    gapless = (
        Session.objects.filter(status="stopped")
        .annotate(chunk_rows=Count("chunks"), last_sequence=Max("chunks__sequence"))
        .filter(Q(last_sequence__isnull=True) | Q(last_sequence=F("chunk_rows") - 1))
        .values_list("pk", flat=True)
    )
    ids = list(gapless)
    for start in range(0, len(ids), BATCH):
        Session.objects.filter(pk__in=ids[start : start + BATCH]).update(complete=True)


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0006_beat_schedule"),
        ("chunks_app", "0003_status_list_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="complete",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_complete, migrations.RunPython.noop),
    ]
