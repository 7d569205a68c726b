from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chunks_app", "0003_status_list_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="chunk",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("processing", "Processing"),
                    ("stored", "Stored"),
                    ("failed", "Failed"),
                    ("damaged", "Damaged"),
                ],
                default="received",
                max_length=16,
            ),
        ),
    ]
