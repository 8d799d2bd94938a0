"""Opaque secrets: generation from the CSPRNG, storage as digests, constant-time checks.

Authorization codes, refresh tokens, client secrets and session cookie secrets are 256-bit random
values (RFC 6749 §10.10 asks for at least 128 bits). Only their SHA-256 digests are stored: the
values are high-entropy, so a fast hash is enough and a database leak reveals nothing usable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets


def new_token(nbytes: int = 32) -> str:
    return _secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(value.encode("utf-8")).digest())
        .decode()
        .rstrip("=")
    )


def matches(value: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(value), stored_digest)
