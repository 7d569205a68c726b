from django.conf import settings
from django.db import migrations
from django.utils import timezone

# name -> (task, interval in hours); editable in the admin afterwards, never overwritten here.
PERIODIC_TASKS = {
    "lucid: retention and cleanup": (
        "sessions_app.tasks.cleanup_task",
        settings.LUCID_CLEANUP_INTERVAL_HOURS,
    ),
    "lucid: backup": ("sessions_app.tasks.backup_task", settings.LUCID_BACKUP_INTERVAL_HOURS),
}


def create_periodic_tasks(apps, schema_editor):
    """Register the periodic tasks with django-celery-beat, once."""
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    created = False
    for name, (task, hours) in PERIODIC_TASKS.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        every = max(hours, 1)
        interval = IntervalSchedule.objects.filter(every=every, period="hours").first()
        if interval is None:
            interval = IntervalSchedule.objects.create(every=every, period="hours")
        PeriodicTask.objects.create(name=name, task=task, interval=interval)
        created = True
    if created:
        # The beat scheduler reloads its schedule when this timestamp moves.
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete_periodic_tasks(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=PERIODIC_TASKS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0005_last_data_at"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_periodic_tasks, delete_periodic_tasks)]
