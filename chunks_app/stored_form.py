"""What a chunk's raw bytes become in the chunk store: compressed if that makes them smaller,
hashed, named for the key that seals them. Shared by the upload stored in its request and the
pipeline."""

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from chunks_app.codecs import compress_if_smaller
from chunks_app.sealing import active_key_id, chunk_seal, stored_key
from sessions_app.models import Session


@dataclass(frozen=True)
class StoredForm:
    """The bytes to store (before sealing), their codec, sha256 and sealing key, and their name."""

    session_id: uuid.UUID
    sequence: int
    algorithm: str
    content: bytes
    sha256: str
    key_id: str | None
    storage_key: str

    def sealed(self) -> Iterable[bytes]:
        """The content as the chunk store keeps it: sealed under `key_id`, if any."""
        return chunk_seal(
            [self.content], session_id=self.session_id, sequence=self.sequence, key_id=self.key_id
        )

    def chunk_fields(self) -> dict[str, object]:
        """The chunk's columns that say how it is stored."""
        return {
            "algorithm": self.algorithm,
            "compressed_size": len(self.content),
            "stored_sha256": self.sha256,
            "storage_key": self.storage_key,
            "key_id": self.key_id,
        }


def chunk_stored_form(
    *, session: Session, sequence: int, raw: bytes, raw_sha256: str
) -> StoredForm:
    """The stored form of chunk `sequence`'s `raw` bytes (whose sha256 is `raw_sha256`), in the
    session's codec and level, under the active key."""
    algorithm, content = compress_if_smaller(
        raw, algorithm=session.compression_algorithm, level=session.compression_level
    )
    sha256 = raw_sha256 if content is raw else hashlib.sha256(content).hexdigest()
    key_id = active_key_id()
    name = stored_key(session_id=session.pk, sequence=sequence, algorithm=algorithm, key_id=key_id)
    return StoredForm(session.pk, sequence, algorithm, content, sha256, key_id, name)
