"""The token response (RFC 6749 §5.1; OIDC Core §3.1.3.3), shared by both grants."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from freshid.errors import InvalidGrant
from freshid.protocol import minting
from freshid.provider import Provider
from freshid.storage import grants as grant_store
from freshid.storage.grants import Grant, Holder
from freshid.tokens.keys import SigningKey


def token_response(
    conn: Connection,
    provider: Provider,
    key: SigningKey,
    grant: Grant,
    *,
    scope: str,
    nonce: str | None,
    now: int,
    holder: Holder,
    spent_refresh_token: str | None = None,
) -> tuple[dict[str, Any], str] | None:
    """The token response, and the new access token's ``jti`` for the event that records it.

    With ``spent_refresh_token`` (the refresh grant), that token is retired in the same step that
    issues its successor; None means it had been used already and nothing was issued."""
    settings = provider.settings
    if holder.user_disabled:
        raise InvalidGrant("the user's account is disabled")
    access = minting.access_token(
        grant,
        issuer=provider.issuer,
        audience=provider.issuer,
        key=key,
        now=now,
        ttl=settings.access_token_ttl,
        scope=scope,
    )
    details = grant.authorization_details()
    refresh: str | None = None
    if spent_refresh_token is not None:
        refresh = grant_store.rotate_refresh_token(
            conn, spent_refresh_token, grant.id, access.jti, access.expires_at, now
        )
        if refresh is None:
            return None
    else:
        grant_store.record_access_token(conn, access.jti, grant.id, access.expires_at)
        if details is None:
            refresh = grant_store.issue_refresh_token(conn, grant.id, now)
    body: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl,
        "scope": scope,
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    if details is not None:
        # A proof bound to one action is spent by one use: no refresh token could honour that.
        body["authorization_details"] = details
    if "openid" in scope.split():
        body["id_token"] = minting.id_token(
            grant,
            issuer=provider.issuer,
            key=key,
            now=now,
            ttl=settings.id_token_ttl,
            nonce=nonce,
            email=holder.email,
        )
    return body, access.jti
