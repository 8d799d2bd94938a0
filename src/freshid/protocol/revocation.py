"""Token revocation (RFC 7009).

Revoking a refresh token revokes its whole grant, access tokens included (RFC 7009 §2.1).
Revoking an access token revokes that token. Unknown tokens, and tokens of another client, get the
same empty 200 (RFC 7009 §2.2), so the endpoint reveals nothing.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from freshid.errors import InvalidRequest, OAuthError, UnsupportedTokenType
from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.protocol import client_auth, responses
from freshid.protocol import params as request_params
from freshid.protocol.authorize.flow import find_client
from freshid.protocol.verification import TokenRejected, verify_own
from freshid.provider import Provider
from freshid.storage import grants as grant_store


async def revoke(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    basic = "authorization" in request.headers
    try:
        params = await request_params.form(request)
        token = params.value("token")
        if token is None:
            raise InvalidRequest("token is required")
        hint = params.value("token_type_hint")
        if hint not in {None, "access_token", "refresh_token"}:
            raise UnsupportedTokenType("token_type_hint must be access_token or refresh_token")
        ring = await provider.keyring_async()
        now = provider.now()
        jti: str | None = None
        if token.count(".") == 2:
            try:
                claims = verify_own(
                    token, ring, issuer=provider.issuer, typ="at+jwt", now=now, check_expiry=False
                )
                jti = claims.get("jti") if isinstance(claims.get("jti"), str) else None
            except TokenRejected:
                jti = None

        def run(conn: Connection) -> None:
            client = client_auth.authenticate(request, params, lambda cid: find_client(conn, cid))
            if jti is not None:
                grant = grant_store.access_token_active(conn, jti, now)
                if grant is not None and grant.client_id == client.client_id:
                    grant_store.revoke_access_token(conn, jti, now)
                    outbox.record(
                        conn,
                        EventType.TOKEN_REVOKED,
                        now,
                        user_id=grant.user_id,
                        session_id=grant.session_id,
                        client_id=client.client_id,
                        token_type="access_token",
                    )
                return
            record = grant_store.find_refresh_token(conn, token)
            if record is not None and record.grant.client_id == client.client_id:
                grant = record.grant
                if grant_store.revoke_grant(conn, grant.id, "revoked_by_client", now):
                    outbox.record(
                        conn,
                        EventType.TOKEN_REVOKED,
                        now,
                        user_id=grant.user_id,
                        session_id=grant.session_id,
                        client_id=client.client_id,
                        token_type="refresh_token",
                        grant_id=grant.id,
                    )

        await provider.write(run)
    except OAuthError as exc:
        return responses.error(exc, basic_auth_used=basic)
    return Response(status_code=200, headers=responses.NO_STORE)
