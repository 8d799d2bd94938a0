"""PKCE verification (RFC 7636 §4.6), S256 only (RFC 9700 §2.1.1)."""

from __future__ import annotations

import hashlib
import hmac
import re

from freshid.errors import InvalidGrant
from freshid.tokens.jws import b64url_encode

_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def s256(verifier: str) -> str:
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def check(challenge: str | None, verifier: str | None) -> None:
    if challenge is None:
        if verifier is not None:
            # A verifier the authorization request never committed to means someone stripped
            # the challenge: a downgrade (RFC 9700 §2.1.1).
            raise InvalidGrant("code_verifier sent, but the authorization request had no challenge")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required")
    if not _VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier is malformed")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
