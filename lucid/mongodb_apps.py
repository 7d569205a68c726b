"""The contrib and third-party apps with ObjectId keys, for MONGO_URL (MongoDB has no integer keys).

Their migrations, made for these keys, are in lucid/mongodb_migrations.
"""

from django.conf import settings
from django.contrib.auth import apps as auth_apps
from django.contrib.contenttypes import apps as contenttypes_apps
from django_celery_beat import apps as beat_apps

from lucid.apps import LucidAdminConfig


class AdminConfig(LucidAdminConfig):
    default_auto_field = settings.MONGODB_AUTO_FIELD


class AuthConfig(auth_apps.AuthConfig):
    default_auto_field = settings.MONGODB_AUTO_FIELD


class ContentTypesConfig(contenttypes_apps.ContentTypesConfig):
    default_auto_field = settings.MONGODB_AUTO_FIELD


class BeatConfig(beat_apps.BeatConfig):
    default_auto_field = settings.MONGODB_AUTO_FIELD
