"""factory_boy factories for the project's models, built through the services where they exist."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from chunks_app.services import session_stop
from core.roles import ROLE_PERMISSIONS
from core.sizes import MIB
from sessions_app import services, tallies
from sessions_app.fields import SESSION_WRITABLE_FIELDS
from sessions_app.models import Session
from sessions_app.tallies import tally_apply

ACTIONS_TO_REACH = {
    "created": [],
    "recording": [services.session_start],
    "paused": [services.session_start, services.session_pause],
    "stopped": [services.session_start, session_stop],
}
SERVICE_FIELDS = {"owner", *SESSION_WRITABLE_FIELDS}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs) -> None:
        """`UserFactory(roles=["operator"])` puts the user in those groups."""
        for role in extracted or []:
            self.groups.add(Group.objects.get_or_create(name=role)[0])


class SessionFactory(factory.django.DjangoModelFactory):
    """A session created by `session_create` and moved to `status` by the real transitions."""

    class Meta:
        model = Session

    name = factory.Sequence(lambda n: f"session {n}")
    owner = factory.SubFactory(UserFactory)
    host = "rdp.example.test"
    chunk_size = MIB
    compression_algorithm = "zstd"
    compression_level = 6

    @classmethod
    def _create(cls, model_class, *args, status: str = "created", **fields) -> Session:
        session = services.session_create(
            **{key: value for key, value in fields.items() if key in SERVICE_FIELDS}
        )
        if status == "failed":
            Session.objects.filter(pk=session.pk).update(status=status)
            tally_apply(
                session_id=None, tally=tallies.session_moved(source="created", target=status)
            )
        for action in ACTIONS_TO_REACH.get(status, []):
            session = action(session=session)
        stored_as_given = {key: value for key, value in fields.items() if key not in SERVICE_FIELDS}
        if stored_as_given:
            Session.objects.filter(pk=session.pk).update(**stored_as_given)
        session.refresh_from_db()
        return session


def staff_member(role: str):
    """A staff user in `role`, its group granted what migration 0003 grants.

    Transactional tests empty every table, groups included: the grants are put back here.
    """
    user = UserFactory(username=f"admin-{role}", is_staff=True, roles=[role])
    group = user.groups.get(name=role)
    for app_label, model, verbs in ROLE_PERMISSIONS[role]:
        codenames = [f"{verb}_{model}" for verb in verbs]
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )
    return user
