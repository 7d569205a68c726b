"""The C allocator of a process that moves chunks: large buffers kept between requests.

glibc returns a freed buffer of a few MiB to the kernel at once (it was mapped on its own, or it
tops its heap beyond the trim threshold), and the next chunk's buffer is faulted in again, page
by page, zeroed by the kernel: a fifth of the CPU time of a 10 MiB upload. A worker instead
keeps such buffers in its heaps for the next request: up to MMAP_THRESHOLD_BYTES a buffer comes
from a heap, each heap keeps up to TRIM_THRESHOLD_BYTES free, and the worker's threads share
ARENAS heaps, so that what is kept stays bounded (about ARENAS x TRIM_THRESHOLD_BYTES).
"""

import ctypes
import logging

from core.sizes import MIB

logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 32 * MIB  # glibc's largest on 64-bit systems
TRIM_THRESHOLD_BYTES = 64 * MIB
ARENAS = 4


def allocator_keep_large_buffers() -> bool:
    """Tune glibc's allocator as the module says; False (and nothing changed) elsewhere."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    settings = (
        (M_ARENA_MAX, ARENAS),
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    )
    applied = all(mallopt(parameter, value) == 1 for parameter, value in settings)
    if not applied:
        logger.warning("the C allocator did not take the settings of core.memory")
    return applied
