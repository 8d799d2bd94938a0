"""The refresh token grant with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2).

Every use returns a new refresh token and retires the old one. Presenting a retired token means
two parties hold the family: the whole grant is revoked and ``token.refresh_reuse_detected`` is
recorded. The new tokens restate the grant's original proof — ``auth_time``, ``acr``, ``amr``,
``sid`` — never a newer one: refreshing is not re-authenticating (OIDC Core §12.2).

Unless the grant is ``offline_access``, it lives only as long as the session it came from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from freshid.errors import InvalidGrant, InvalidRequest, InvalidScope, OAuthError
from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.protocol.grants.issuance import token_response
from freshid.protocol.params import Params
from freshid.provider import Provider
from freshid.storage import grants as grant_store
from freshid.storage.clients import Client
from freshid.tokens.keys import SigningKey


def exchange(
    conn: Connection, provider: Provider, key: SigningKey, client: Client, params: Params, now: int
) -> dict[str, Any] | OAuthError:
    token = params.value("refresh_token")
    if token is None:
        return InvalidRequest("refresh_token is required")
    record = grant_store.find_refresh_token(conn, token)
    if record is None or record.grant.client_id != client.client_id:
        return InvalidGrant("the refresh token is invalid")
    grant = record.grant
    if grant.revoked_at is not None:
        return InvalidGrant("the refresh token was revoked")
    if record.used_at is not None:
        return _reused(conn, grant, now)
    if grant.expires_at <= now:
        return InvalidGrant("the refresh token has expired")
    if not grant.offline and not record.holder.session_alive(
        now, provider.settings.session_idle_ttl
    ):
        return InvalidGrant("the session behind this refresh token has ended")
    scope = grant.scope
    requested = params.value("scope")
    if requested is not None:
        asked = requested.split()
        if not set(asked) <= set(grant.scope.split()):
            return InvalidScope("scope exceeds what was originally granted")
        scope = " ".join(s for s in grant.scope.split() if s in asked)
    # Retire the token only once the request is known to be good: a refused request must leave it
    # usable, or the client's corrected retry would look like theft.
    issued = token_response(
        conn,
        provider,
        key,
        grant,
        scope=scope,
        nonce=None,
        now=now,
        holder=record.holder,
        spent_refresh_token=token,
    )
    if issued is None:
        return _reused(conn, grant, now)
    body, jti = issued
    outbox.record(
        conn,
        EventType.TOKEN_REFRESHED,
        now,
        user_id=grant.user_id,
        session_id=grant.session_id,
        client_id=grant.client_id,
        grant_id=grant.id,
        jti=jti,
    )
    return body


def _reused(conn: Connection, grant: grant_store.Grant, now: int) -> OAuthError:
    grant_store.record_reuse(conn, grant, EventType.TOKEN_REFRESH_REUSE_DETECTED, now)
    return InvalidGrant("the refresh token was already used; its family is revoked")
