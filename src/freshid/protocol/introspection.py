"""Token introspection (RFC 7662).

Only confidential clients may introspect, and only tokens issued to themselves: for anything else
the answer is ``{"active": false}``, so the endpoint cannot be used to probe other clients' tokens
(RFC 7662 §4). Refresh tokens report the grant's original proof, like every token of the grant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from freshid.errors import InvalidClient, InvalidRequest, OAuthError
from freshid.protocol import client_auth, responses
from freshid.protocol import params as request_params
from freshid.protocol.authorize.flow import find_client
from freshid.protocol.bearer import access_token_claims
from freshid.provider import Provider
from freshid.storage import grants as grant_store
from freshid.storage import sessions as session_store
from freshid.storage.clients import Client

INACTIVE = {"active": False}
_COPIED = (
    "authorization_details",
    "scope",
    "client_id",
    "sub",
    "exp",
    "iat",
    "iss",
    "aud",
    "jti",
    "auth_time",
    "acr",
    "amr",
    "sid",
)


async def introspect(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    try:
        params = await request_params.form(request)
        client: Client = await provider.read_short(
            lambda conn: client_auth.authenticate(
                request, params, lambda cid: find_client(conn, cid)
            )
        )
        if client.is_public:
            raise InvalidClient("public clients cannot introspect tokens")
        token = params.value("token")
        if token is None:
            raise InvalidRequest("token is required")
    except OAuthError as exc:
        return responses.error(exc, basic_auth_used="authorization" in request.headers)

    if token.count(".") == 2:
        claims = await access_token_claims(provider, token)
        if claims is not None and claims.get("client_id") == client.client_id:
            body = {k: claims[k] for k in _COPIED if k in claims}
            return responses.ok({"active": True, "token_type": "Bearer", **body})
        return responses.ok(INACTIVE)

    now = provider.now()

    def refresh_state(conn: Connection) -> dict[str, Any]:
        record = grant_store.find_refresh_token(conn, token)
        if record is None or record.used_at is not None:
            return INACTIVE
        grant = record.grant
        if (
            grant.client_id != client.client_id
            or grant.revoked_at is not None
            or grant.expires_at <= now
        ):
            return INACTIVE
        # The token endpoint refuses a non-offline refresh token once its session has ended.
        if not grant.offline and not session_store.is_alive(
            conn, grant.session_id, now, provider.settings.session_idle_ttl
        ):
            return INACTIVE
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": grant.scope,
            "client_id": grant.client_id,
            "sub": grant.user_id,
            "exp": grant.expires_at,
            "iat": grant.created_at,
            "iss": provider.issuer,
            "auth_time": grant.auth_time,
            "acr": grant.acr,
            "amr": list(grant.amr),
            "sid": grant.session_id,
        }

    return responses.ok(await provider.read_short(refresh_state))
