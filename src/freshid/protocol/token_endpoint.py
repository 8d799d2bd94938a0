"""The token endpoint (RFC 6749 §3.2): client authentication, then one grant per request."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from freshid.errors import OAuthError, UnsupportedGrantType
from freshid.protocol import client_auth, responses
from freshid.protocol import params as request_params
from freshid.protocol.grants import authorization_code, refresh_token
from freshid.provider import Provider

GRANTS = {
    "authorization_code": authorization_code.exchange,
    "refresh_token": refresh_token.exchange,
}


async def token(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    basic = "authorization" in request.headers
    try:
        params = await request_params.form(request)
        grant_type = params.value("grant_type")
        exchange = GRANTS.get(grant_type or "")
        if exchange is None:
            raise UnsupportedGrantType(
                "grant_type is required" if grant_type is None else "unsupported grant_type"
            )
        ring = await provider.keyring_async()
        key = ring.active
        now = provider.now()

        def run(conn: Connection) -> dict[str, Any] | OAuthError:
            client = client_auth.authenticate(
                request, params, lambda cid: provider.client(conn, cid)
            )
            return exchange(conn, provider, key, client, params, now)

        result = await provider.write_short(run)
        if isinstance(result, OAuthError):
            raise result
    except OAuthError as exc:
        return responses.error(exc, basic_auth_used=basic)
    return responses.ok(result)
