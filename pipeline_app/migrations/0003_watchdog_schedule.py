from django.conf import settings
from django.db import migrations


def schedule_watchdog(apps, schema_editor):
    """Run the pipeline watchdog every LUCID_WATCHDOG_INTERVAL_SECONDS; editable in the admin."""
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(
        every=settings.LUCID_WATCHDOG_INTERVAL_SECONDS, period="seconds"
    )
    PeriodicTask.objects.get_or_create(
        name="lucid: pipeline watchdog",
        defaults={"task": "pipeline_app.tasks.pipeline_watchdog_task", "interval": every},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline_app", "0002_pipelines_for_existing_sessions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule_watchdog, migrations.RunPython.noop)]
