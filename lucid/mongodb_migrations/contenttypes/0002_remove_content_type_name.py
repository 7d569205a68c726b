"""Empty: the name our own migrations depend on; 0001_initial made this app's models whole."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("contenttypes", "0001_initial")]
    operations = []
