"""Assemble the Acme Console ASGI app from a config and a clock.

The guard (``freshid_guard.Guard``) is built here from the same catalog file the provider loads,
with the console's clock, an in-memory replay store for bound proofs, and the activity log as its
evidence hook. Everything the app keeps lives on ``app.state.console`` (tests look at it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urljoin

from freshid_guard import Guard, InMemoryPendingStore, InMemoryReplayStore, load_policies_file
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .config import AcmeConfig
from .errors import ConsoleError
from .gate import Gate
from .oidc import FreshIDClient
from .pages import STATIC_DIR, Pages
from .security import SecurityHeadersMiddleware
from .store import ActivityLog, SessionStore, Workspaces
from .views import Console

__all__ = ["SESSION_COOKIE", "create_app"]

SESSION_COOKIE = "acme_session"
"""Cookies ignore ports: the provider on the same host names its cookies ``freshid_*``."""

SESSION_MAX_AGE = 8 * 60 * 60
"""A working day; the freshness of the *proof* is what guards the sensitive actions."""

STEP_UP_TTL = 15 * 60
"""How long a started step-up may take before its ``state`` is forgotten."""


def create_app(config: AcmeConfig, clock: Callable[[], float] = time.time) -> Starlette:
    """Build the console. ``clock`` returns Unix seconds and drives every freshness decision (the
    guard's included), so tests can move time."""
    activity = ActivityLog()
    guard = Guard(
        config.issuer,
        load_policies_file(config.policy_file),
        replay_store=InMemoryReplayStore(),
        on_evidence=activity.record,
        clock=clock,
    )
    client = FreshIDClient(config)
    gate = Gate(config, guard, client, InMemoryPendingStore(ttl=STEP_UP_TTL))
    pages = Pages(clock, urljoin(config.issuer.rstrip("/") + "/", "account"))
    console = Console(
        client=client,
        gate=gate,
        pages=pages,
        sessions=SessionStore(ttl=SESSION_MAX_AGE),
        workspaces=Workspaces(),
        activity=activity,
        clock=clock,
    )

    async def render_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, ConsoleError):  # only registered for ConsoleError
            raise exc
        return pages.error(request, exc)

    routes = [
        Route("/", console.home, methods=["GET"]),
        Route("/login", console.login, methods=["GET"]),
        Route("/callback", console.callback, methods=["GET"]),
        Route("/logout", console.logout, methods=["POST"]),
        Route("/projects/{project_id}", console.project, methods=["GET"]),
        Route("/projects/{project_id}/keys/{key_id}", console.reveal_key, methods=["GET"]),
        Route("/billing", console.billing, methods=["GET"]),
        Route("/billing", console.update_billing, methods=["POST"]),
        Route("/billing/confirm", console.confirm_billing, methods=["GET"]),
        Route("/account/delete", console.danger_zone, methods=["GET"]),
        Route("/account/delete", console.delete_account, methods=["POST"]),
        Route("/account/delete/confirm", console.confirm_delete, methods=["GET"]),
        Route("/account/new", console.new_account, methods=["POST"]),
        Route("/activity", console.activity_page, methods=["GET"]),
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
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ConsoleError: render_error},
    )
    app.state.console = console
    return app
