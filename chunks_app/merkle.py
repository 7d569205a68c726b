"""The Merkle root of a session: SHA-256 over its chunk hashes in sequence order.

Leaves are the chunks' raw SHA-256 digests (32 bytes each, not hex); a node is
sha256(left || right); a level with an odd count pairs its last node with itself. The root is
published as hex; a session without chunks has none.
"""

import hashlib
from collections.abc import Iterable


def merkle_root(chunk_sha256s: Iterable[str]) -> str | None:
    level = [bytes.fromhex(digest) for digest in chunk_sha256s]
    if not level:
        return None
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0].hex()
