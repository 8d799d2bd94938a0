"""The authorization endpoint, GET and POST (OIDC Core §3.1.2.1)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from freshid.errors import InvalidRequest, OAuthError
from freshid.protocol import params as request_params
from freshid.protocol.authorize import checks, flow
from freshid.protocol.verification import TokenRejected, verify_own
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.storage.clients import Client
from freshid.tokens.keys import KeyRing
from freshid.ui.pages import error_page


def hint_verifier(provider: Provider, ring: KeyRing) -> Callable[[str], str]:
    def verify_hint(token: str) -> str:
        # OIDC Core §3.1.2.1: the hint may have expired; it must still be one we signed.
        try:
            claims = verify_own(
                token,
                ring,
                issuer=provider.issuer,
                typ="JWT",
                now=provider.now(),
                check_expiry=False,
            )
        except TokenRejected:
            raise InvalidRequest("id_token_hint is not a valid ID token from this issuer") from None
        return str(claims["sub"])

    return verify_hint


async def authorize(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    try:
        params = (
            await request_params.form(request)
            if request.method == "POST"
            else request_params.query(request)
        )
    except OAuthError as exc:
        return error_page("This sign-in link is not valid", exc.description, exc.error)

    cookie = cookies.read(request, cookies.SESSION, provider.settings)

    def load(conn: Connection) -> tuple[Client | None, flow.SignedIn | None]:
        client_id = params.value("client_id")
        # Cached for a few seconds, as at the token endpoint (Provider.client).
        client = provider.client(conn, client_id) if client_id else None
        return client, flow.current_session(conn, cookie, provider)

    found_client, signed_in = await provider.read_short(load)
    try:
        client, redirect_uri = checks.resolve_client(params, lambda _cid: found_client)
    except checks.PageError as exc:
        return error_page(exc.title, exc.description, exc.error)

    ring = await provider.keyring_async()
    try:
        areq = checks.validate(
            params, client, redirect_uri, hint_verifier(provider, ring), provider.policies
        )
    except OAuthError as exc:
        return flow.error_to_client(provider, redirect_uri, checks.state_of(params), exc)
    return await flow.advance(provider, request, areq, client, signed_in)
