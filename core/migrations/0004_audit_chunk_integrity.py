from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lucid", "0003_roles"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("session_created", "Session created"),
                    ("session_updated", "Session updated"),
                    ("session_deleted", "Session deleted"),
                    ("session_state_changed", "Session state changed"),
                    ("pipeline_state_changed", "Pipeline state changed"),
                    ("chunk_downloaded", "Chunk downloaded"),
                    ("recording_downloaded", "Recording downloaded"),
                    ("manifest_read", "Manifest read"),
                    ("backup_created", "Backup created"),
                    ("backup_restored", "Backup restored"),
                    ("retention_deleted", "Deleted by retention"),
                    ("login_failed", "Login failed"),
                    ("chunk_damaged", "Chunk found damaged"),
                    ("chunk_repaired", "Chunk repaired from a backup"),
                ],
                max_length=32,
            ),
        ),
    ]
