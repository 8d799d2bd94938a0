"""Validating our own access tokens as a resource would (RFC 6750 §2.1; RFC 9068 §4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from freshid.errors import InvalidToken
from freshid.protocol.verification import TokenRejected, verify_own
from freshid.provider import Provider
from freshid.storage import grants as grant_store


async def access_token_claims(provider: Provider, token: str) -> dict[str, Any] | None:
    """The claims of an active access token we issued, or None (bad, expired or revoked)."""
    now = provider.now()
    ring = await provider.keyring_async()
    try:
        claims = verify_own(token, ring, issuer=provider.issuer, typ="at+jwt", now=now)
    except TokenRejected as exc:
        if str(exc) != "unknown kid":
            return None
        # Perhaps another node rotated the key a moment ago.
        ring = await provider.keyring_async(refresh=True)
        try:
            claims = verify_own(token, ring, issuer=provider.issuer, typ="at+jwt", now=now)
        except TokenRejected:
            return None
    jti = claims.get("jti")
    if not isinstance(jti, str):
        return None

    def active(conn: Connection) -> bool:
        return grant_store.access_token_active(conn, jti, now) is not None

    return claims if await provider.read_short(active) else None


def bearer_token(authorization: str | None) -> str:
    if authorization is None:
        raise InvalidToken("a bearer token is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("a bearer token is required")
    return token.strip()
