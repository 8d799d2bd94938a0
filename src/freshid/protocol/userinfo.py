"""The UserInfo endpoint (OIDC Core §5.3), GET and POST, bearer token in the header only."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from freshid.errors import InvalidToken
from freshid.protocol import responses
from freshid.protocol.bearer import access_token_claims, bearer_token
from freshid.provider import Provider
from freshid.storage import users as user_store


async def userinfo(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    try:
        token = bearer_token(request.headers.get("authorization"))
        claims = await access_token_claims(provider, token)
        if claims is None:
            raise InvalidToken("the access token is invalid, expired or revoked")
        if "openid" not in str(claims.get("scope", "")).split():
            raise InvalidToken("the access token was not issued for openid")
        sub = str(claims["sub"])
        user = await provider.read_short(lambda conn: user_store.by_id(conn, sub))
        if user is None or user.disabled:
            raise InvalidToken("the user is no longer active")
    except InvalidToken as exc:
        return responses.error(exc)
    body: dict[str, Any] = {"sub": user.id}
    if "email" in str(claims.get("scope", "")).split():
        body["email"] = user.email
        body["email_verified"] = False
    return responses.ok(body)
