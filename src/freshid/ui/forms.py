"""Reading hosted-page forms: strict parameters plus the per-browser CSRF token (OWASP ASVS 5.0
V3.5: every state-changing request carries an unpredictable token bound to the browser)."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from freshid.errors import OAuthError
from freshid.protocol import params as request_params
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.storage.sessions import RequestContext
from freshid.ui.pages import error_page


async def read(request: Request, browser: str | None) -> request_params.Params | Response:
    """The form's fields, or the page to answer with when it is malformed or forged."""
    try:
        form = await request_params.form(request)
    except OAuthError as exc:
        return error_page("The form could not be read", exc.description, exc.error)
    token = form.get("csrf_token", "")
    expected = cookies.csrf_token(browser) if browser else ""
    if not browser or not hmac.compare_digest(token.encode(), expected.encode()):
        return error_page(
            "This form has expired",
            "Reload the page and try again.",
            "invalid_request",
            status_code=403,
        )
    return form


def request_context(request: Request, provider: Provider, client_id: str | None) -> RequestContext:
    """Who is asking, for events: the peer address (or the forwarded one from a trusted proxy)."""
    peer = request.client.host if request.client else None
    ip = peer
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in provider.settings.trusted_proxies:
        ip = forwarded.split(",")[-1].strip()[:64]
    agent = request.headers.get("user-agent")
    return RequestContext(ip=ip, user_agent=agent[:256] if agent else None, client_id=client_id)
