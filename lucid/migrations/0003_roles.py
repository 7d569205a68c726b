from django.db import migrations

# role -> (app label, model, permission verbs)
ROLE_PERMISSIONS = {
    "recorder": [],
    "operator": [
        ("sessions_app", "session", ("view", "change", "delete")),
        ("chunks_app", "chunk", ("view",)),
        ("pipeline_app", "pipeline", ("view", "change")),
        ("lucid", "auditentry", ("view",)),
        ("django_celery_beat", "periodictask", ("view", "change")),
    ],
    "auditor": [
        ("sessions_app", "session", ("view",)),
        ("chunks_app", "chunk", ("view",)),
        ("pipeline_app", "pipeline", ("view",)),
        ("lucid", "auditentry", ("view",)),
    ],
}


def create_roles(apps, schema_editor):
    """The three roles as groups, with the admin permissions each may use."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, model, verbs in grants:
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label,
                    codename__in=[f"{verb}_{model}" for verb in verbs],
                )
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
