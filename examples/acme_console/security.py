"""Response headers that make the pages hard to misuse, as a plain ASGI middleware.

* A strict Content-Security-Policy: the pages have no scripts and no inline styles, so the
  browser may load nothing but ``/static`` CSS. ``form-action`` also allows the provider's
  origin because the logout form's 303 leads there, and browsers check redirects of a form post.
* ``Referrer-Policy: no-referrer``: the callback URL carries an authorization code; it must not
  leak to the next page (RFC 9700 §4.2.4).
* ``Cache-Control: no-store`` on everything but static files: the pages show personal data and,
  once, an API key.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware"]


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, provider_origin: str, static_prefix: str = "/static/"):
        self.app = app
        self.static_prefix = static_prefix
        self.headers = {
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'self'; img-src 'self'; "
                f"form-action 'self' {provider_origin}; frame-ancestors 'none'; base-uri 'none'"
            ),
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
