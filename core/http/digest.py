"""RFC 9530 `Content-Digest`: the SHA-256 a client says its body has."""

import base64
import binascii

from core.errors import ValidationFailed


def parse_content_digest(header: str | None) -> bytes | None:
    """The sha-256 digest named by the header; None when there is no header.

    A header without sha-256, or with a malformed value, is a 400: we cannot check it.
    """
    if header is None:
        return None
    for member in header.split(","):
        algorithm, _, value = member.strip().partition("=")
        if algorithm.strip().lower() != "sha-256":
            continue
        value = value.strip()
        try:
            if not (value.startswith(":") and value.endswith(":") and len(value) > 2):
                raise ValueError(value)
            digest = base64.b64decode(value[1:-1], validate=True)
        except (ValueError, binascii.Error):
            digest = b""
        if len(digest) != 32:
            break
        return digest
    raise ValidationFailed(
        "Content-Digest must carry sha-256 as `sha-256=:<base64 of the 32-byte digest>:`.",
        code="invalid_digest",
        fields={"Content-Digest": ["Expected sha-256=:<base64>:."]},
    )
