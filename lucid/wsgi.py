"""WSGI entry point for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lucid.settings")

application = get_wsgi_application()

from core.encryption import key_ring  # noqa: E402 - needs the settings loaded above

key_ring()  # a worker refuses to boot on a bad key configuration, saying what to fix
