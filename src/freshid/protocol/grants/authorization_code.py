"""The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.5-4.6, OIDC Core §3.1.3.2).

A code is redeemed once. A second presentation is treated as theft: the grant, and every token
issued from the first redemption, is revoked (RFC 6749 §4.1.2, RFC 9700 §4.5) and an event is
recorded. Errors are *returned* from the transaction rather than raised, so that the revocation
commits before the client hears ``invalid_grant``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from freshid.errors import InvalidGrant, InvalidRequest, OAuthError
from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.protocol import pkce
from freshid.protocol.grants.issuance import token_response
from freshid.protocol.params import Params
from freshid.provider import Provider
from freshid.storage import grants as grant_store
from freshid.storage.clients import Client
from freshid.tokens.keys import SigningKey


def exchange(
    conn: Connection, provider: Provider, key: SigningKey, client: Client, params: Params, now: int
) -> dict[str, Any] | OAuthError:
    code, redirect_uri = params.value("code"), params.value("redirect_uri")
    if code is None:
        return InvalidRequest("code is required")
    if redirect_uri is None:
        return InvalidRequest("redirect_uri is required")
    record = grant_store.find_code(conn, code)
    if record is None or record.grant.client_id != client.client_id:
        return InvalidGrant("the authorization code is invalid")
    grant = record.grant
    if record.used_at is not None or not grant_store.redeem_code(conn, code, now):
        grant_store.record_reuse(conn, grant, EventType.AUTHORIZATION_CODE_REUSE_DETECTED, now)
        return InvalidGrant("the authorization code was already used; its tokens are revoked")
    if record.expires_at <= now:
        return InvalidGrant("the authorization code has expired")
    if grant.revoked_at is not None:
        return InvalidGrant("the grant was revoked")
    if redirect_uri != record.redirect_uri:
        return InvalidGrant("redirect_uri does not match the authorization request")
    try:
        pkce.check(record.code_challenge, params.value("code_verifier"))
    except InvalidGrant as exc:
        return exc
    issued = token_response(
        conn,
        provider,
        key,
        grant,
        scope=grant.scope,
        nonce=record.nonce,
        now=now,
        holder=record.holder,
    )
    assert issued is not None  # only a spent refresh token can come back empty
    body, jti = issued
    outbox.record(
        conn,
        EventType.TOKEN_ISSUED,
        now,
        user_id=grant.user_id,
        session_id=grant.session_id,
        client_id=grant.client_id,
        grant_id=grant.id,
        grant_type="authorization_code",
        jti=jti,
        action=grant.action,
    )
    return body
