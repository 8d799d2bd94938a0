"""RP-Initiated Logout 1.0 (§2-§3).

The user always confirms on our page (a CSRF-protected POST), so a third-party link cannot sign
them out. ``post_logout_redirect_uri`` is honoured only when it exactly matches one registered for
the client identified by ``client_id`` or by the ``id_token_hint``'s audience (§3); otherwise the
user stays on our "signed out" page.
"""

from __future__ import annotations

import hmac

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from freshid.errors import InvalidRequest, OAuthError
from freshid.protocol import params as request_params
from freshid.protocol.authorize import flow
from freshid.protocol.params import Params
from freshid.protocol.verification import TokenRejected, verify_own
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.storage import sessions as session_store
from freshid.storage.clients import Client
from freshid.ui.pages import error_page, render

_INVALID_TITLE = "This sign-out link is not valid"


async def _resolve(provider: Provider, params: Params) -> tuple[Client | None, str | None]:
    """The client and the redirect to use after logout; raises InvalidRequest when inconsistent."""
    client_id = params.value("client_id")
    hint = params.value("id_token_hint")
    if hint is not None:
        ring = await provider.keyring_async()
        try:
            claims = verify_own(
                hint,
                ring,
                issuer=provider.issuer,
                typ="JWT",
                now=provider.now(),
                check_expiry=False,
            )
        except TokenRejected:
            raise InvalidRequest("id_token_hint is not a valid ID token from this issuer") from None
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if client_id is not None and client_id not in audiences:
            raise InvalidRequest("client_id does not match the id_token_hint")
        client_id = client_id or (str(audiences[0]) if audiences and audiences[0] else None)
    redirect = params.value("post_logout_redirect_uri")
    if client_id is None:
        if redirect is not None:
            raise InvalidRequest("post_logout_redirect_uri needs client_id or id_token_hint")
        return None, None
    cid = client_id
    client = await provider.read(lambda conn: flow.find_client(conn, cid))
    if client is None:
        raise InvalidRequest("unknown client")
    if redirect is not None and redirect not in client.post_logout_redirect_uris:
        raise InvalidRequest("post_logout_redirect_uri is not registered for this client")
    return client, redirect


async def end_session(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    try:
        params = (
            await request_params.form(request)
            if request.method == "POST"
            else request_params.query(request)
        )
        client, redirect = await _resolve(provider, params)
    except OAuthError as exc:
        return error_page(_INVALID_TITLE, exc.description, exc.error)
    browser, fresh = cookies.browser_id(request, provider.settings)
    session_cookie = cookies.read(request, cookies.SESSION, provider.settings)
    signed_in = await provider.read(
        lambda conn: flow.current_session(conn, session_cookie, provider)
    )
    hidden = {
        "client_id": client.client_id if client else None,
        "post_logout_redirect_uri": redirect,
        "state": params.value("state"),
    }
    response = render(
        "logout.html",
        csrf_token=cookies.csrf_token(browser),
        action_url="/logout/confirm",
        client_name=client.name if client else None,
        user_email=signed_in.user.email if signed_in else None,
        hidden={k: v for k, v in hidden.items() if v is not None},
    )
    if fresh:
        cookies.write(response, cookies.BROWSER, browser, provider.settings, max_age=None)
    return response


async def confirm(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    browser = cookies.read(request, cookies.BROWSER, provider.settings)
    try:
        params = await request_params.form(request)
        _client, redirect = await _resolve(provider, params)
    except OAuthError as exc:
        return error_page(_INVALID_TITLE, exc.description, exc.error)
    token = params.get("csrf_token", "")
    if browser is None or not hmac.compare_digest(
        token.encode(), cookies.csrf_token(browser).encode()
    ):
        return error_page(
            "This form has expired", "Reload the page and try again.", status_code=403
        )
    if params.value("confirm") != "yes":
        return render(
            "message.html",
            title="You are still signed in",
            message="Nothing was changed. You can close this window.",
        )
    session_cookie = cookies.read(request, cookies.SESSION, provider.settings)
    now = provider.now()

    def sign_out(conn: Connection) -> None:
        signed_in = flow.current_session(conn, session_cookie, provider)
        if signed_in is not None:
            session_store.revoke(conn, signed_in.session.id, "logout", now, signed_in.user.id)

    await provider.write(sign_out)
    response: Response
    if redirect is not None:
        response = flow.redirect_to_client(redirect, {"state": params.value("state")})
    else:
        response = render("logged_out.html", message=None)
    cookies.clear(response, cookies.SESSION, provider.settings)
    return response
