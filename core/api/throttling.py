"""Rate limits whose check and count are one step for every process sharing the cache."""

import fcntl
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)

LOCK_SECONDS = 5


@contextmanager
def _exclusive(name: str) -> Iterator[None]:
    """Hold the lock `name` against every thread and process using the same cache.

    With Redis (django-redis), a Redis lock: across machines. Otherwise a file lock under the
    storage path: across this machine's processes, as the file cache is shared. Redis down
    gives no lock, as it gives no cache: the limit is then not enforced, never an error.
    """
    if hasattr(cache, "lock"):
        try:
            lock = cache.lock(f"lucid:lock:{name}", timeout=LOCK_SECONDS)
            acquired = lock.acquire(blocking_timeout=LOCK_SECONDS)
        except Exception as error:  # a cache that fails reads as no cache, whatever its error
            logger.warning("no lock %s: %s", name, error)
            yield
            return
        try:
            yield
        finally:
            if acquired:
                lock.release()
        return
    directory = settings.LUCID_STORAGE_PATH / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    with (directory / f"{digest}.lock").open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        yield


class SharedScopedRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, with no request slipping between another's check and count."""

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, self.scope_attr, None)
        if not scope:
            return True
        with _exclusive(f"throttle:{scope}:{self.get_ident(request)}"):
            return super().allow_request(request, view)
