from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0007_session_complete"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="chunks_damaged",
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
