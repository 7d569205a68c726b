from django.db import migrations

from core.roles import roles_grant


def create_roles(apps, schema_editor):
    """The three roles as groups, with the admin permissions each may use."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    roles_grant(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("lucid", "0002_audit_trail"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("sessions_app", "0005_last_data_at"),
        ("chunks_app", "0001_initial"),
        ("pipeline_app", "0002_pipelines_for_existing_sessions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
