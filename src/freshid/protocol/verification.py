"""Verifying JWTs FreshID itself issued: access tokens at userinfo and introspection, and
``id_token_hint`` (OIDC Core §3.1.2.1, which may be expired but must be ours).

The algorithm allow-list is ES256 only; the key comes from our own key ring by ``kid``.
"""

from __future__ import annotations

from typing import Any

from freshid.tokens.jws import JWSError, verify
from freshid.tokens.keys import KeyRing

ALLOWED_ALGS = frozenset({"ES256"})


class TokenRejected(Exception):
    """Not a valid token of ours; the message is safe to show."""


def verify_own(
    token: str,
    ring: KeyRing,
    *,
    issuer: str,
    typ: str,
    now: int,
    check_expiry: bool = True,
) -> dict[str, Any]:
    try:
        claims = verify(token, ring.public_key, allowed_algs=ALLOWED_ALGS, expected_typ=typ)
    except JWSError as exc:
        raise TokenRejected(str(exc)) from None
    if claims.get("iss") != issuer:
        raise TokenRejected("issuer mismatch")
    if not isinstance(claims.get("sub"), str):
        raise TokenRejected("missing sub")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise TokenRejected("missing exp")
    if check_expiry and exp <= now:
        raise TokenRejected("token expired")
    return claims
