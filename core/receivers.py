"""What keeps the cached identities true: a change of a user, its groups, a role group or an
API key forgets the cached identities it touches."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from core.services import identities_forget

User = get_user_model()


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def user_changed(sender, instance, **kwargs) -> None:
    identities_forget(user_ids=[instance.pk])


@receiver(m2m_changed, sender=User.groups.through)
def user_groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:
        identities_forget(user_ids=[instance.pk])
    elif pk_set is not None:
        identities_forget(user_ids=pk_set)
    else:
        identities_forget(user_ids=instance.user_set.values_list("pk", flat=True))


@receiver(post_save, sender=Group)
@receiver(pre_delete, sender=Group)
def group_changed(sender, instance, **kwargs) -> None:
    identities_forget(user_ids=instance.user_set.values_list("pk", flat=True))


@receiver(post_save, sender=Token)
@receiver(post_delete, sender=Token)
def api_key_changed(sender, instance, **kwargs) -> None:
    identities_forget(api_keys=[instance.key])
