from django.db import migrations


def create_missing_pipelines(apps, schema_editor):
    Session = apps.get_model("sessions_app", "Session")
    Pipeline = apps.get_model("pipeline_app", "Pipeline")
    Pipeline.objects.bulk_create(
        [Pipeline(session=session) for session in Session.objects.filter(pipeline__isnull=True)]
    )


class Migration(migrations.Migration):
    dependencies = [("pipeline_app", "0001_initial"), ("sessions_app", "0002_ingest_state")]

    operations = [migrations.RunPython(create_missing_pipelines, migrations.RunPython.noop)]
