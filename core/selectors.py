"""Identities read on every API request: the caller's user row and roles, from the shared cache.

A request needs its caller's row and roles (two queries, half the cost of a small request). They
are cached under the user's id for `LUCID_IDENTITY_CACHE_SECONDS`, and an API key's user id under
the key's hash; `identities_forget` drops them when a user, its groups, a role group or a key
changes. The cache is shared by every process, so a change holds for all of them at once. The
password hash is never cached: it stays deferred on a user built from the cache.
"""

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS
from rest_framework.authtoken.models import Token

from core.roles import user_roles

# The one column a user from the cache leaves unread.
UNCACHED_FIELDS = frozenset({"password"})


def user_cache_key(user_id: object) -> str:
    return f"lucid:identity:user:{user_id}"


def api_key_cache_key(key: str) -> str:
    return f"lucid:identity:api-key:{hashlib.sha256(key.encode()).hexdigest()}"


def _identity(user: AbstractBaseUser) -> dict[str, Any]:
    """What the cache keeps of `user`: its columns but the password, and its roles."""
    columns = {
        field.attname: getattr(user, field.attname)
        for field in user._meta.concrete_fields
        if field.attname not in UNCACHED_FIELDS
    }
    return {"columns": columns, "roles": user_roles(user)}


def _user_from(identity: dict[str, Any]) -> AbstractBaseUser:
    columns = identity["columns"]
    user = get_user_model().from_db(DEFAULT_DB_ALIAS, list(columns), list(columns.values()))
    user._lucid_roles = identity["roles"]
    return user


def user_get(*, user_id: object) -> AbstractBaseUser | None:
    """The user with this id (active or not) with its roles, None if there is none."""
    key = user_cache_key(user_id)
    identity = cache.get(key)
    if identity is None:
        user = get_user_model().objects.defer(*UNCACHED_FIELDS).filter(pk=user_id).first()
        if user is None:
            return None
        identity = _identity(user)
        cache.set(key, identity, timeout=settings.LUCID_IDENTITY_CACHE_SECONDS)
    return _user_from(identity)


def api_key_user_get(*, key: str) -> AbstractBaseUser | None:
    """The user whose API key this is (active or not), None if no user has it."""
    cache_key = api_key_cache_key(key)
    user_id = cache.get(cache_key)
    if user_id is None:
        user_id = Token.objects.filter(key=key).values_list("user_id", flat=True).first()
        if user_id is None:
            return None
        cache.set(cache_key, user_id, timeout=settings.LUCID_IDENTITY_CACHE_SECONDS)
    return user_get(user_id=user_id)
