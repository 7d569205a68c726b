"""factory_boy factories for the project's models."""

import factory
from django.contrib.auth import get_user_model

from pipeline_app.models import Pipeline
from sessions_app.models import Session

MIB = 1024 * 1024


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"session {n}")
    owner = factory.SubFactory(UserFactory)
    host = "rdp.example.test"
    chunk_size = MIB
    compression_algorithm = "zstd"
    compression_level = 6
    pipeline = factory.RelatedFactory(
        "tests.factories.PipelineFactory", factory_related_name="session"
    )


class PipelineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pipeline
