"""Assemble the Acme Console ASGI app from a config, a clock and (in tests) an HTTP transport."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .config import AcmeConfig
from .errors import ConsoleError
from .oidc import FreshIDClient
from .pages import STATIC_DIR, Pages
from .security import SecurityHeadersMiddleware
from .views import Console

__all__ = ["SESSION_COOKIE", "create_app"]

SESSION_COOKIE = "acme_session"
"""Cookies ignore ports: the provider on the same host names its cookies ``freshid_*``."""

SESSION_MAX_AGE = 8 * 60 * 60
"""A working day; the freshness of the *proof* is what guards the sensitive action."""


def create_app(
    config: AcmeConfig,
    clock: Callable[[], float] = time.time,
    *,
    transport: object | None = None,
) -> Starlette:
    """Build the console.

    ``clock`` returns Unix seconds and drives every freshness decision, so tests can move time.
    ``transport`` replaces the network for back-channel calls to the provider (tests only): an
    async transport of the HTTP library Authlib uses (``httpx2`` when installed, else ``httpx``).
    """
    pages = Pages()
    console = Console(config, FreshIDClient(config, transport=transport), pages, clock)

    async def render_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, ConsoleError):  # only registered for ConsoleError
            raise exc
        return pages.error(request, exc)

    routes = [
        Route("/", console.home, methods=["GET"], name="home"),
        Route("/login", console.login, methods=["GET"], name="login"),
        Route("/callback", console.callback, methods=["GET"], name="callback"),
        Route("/api-key", console.api_key, methods=["GET"], name="api_key"),
        Route("/logout", console.logout, methods=["POST"], name="logout"),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeadersMiddleware, provider_origin=config.issuer_origin),
        Middleware(
            SessionMiddleware,
            secret_key=config.session_secret,
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE,
            same_site="lax",
            https_only=config.https_only,
        ),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ConsoleError: render_error},
    )
