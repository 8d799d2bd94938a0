"""``create_app(settings)``: the Starlette application with every route and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from freshid.admin.api import create_api as create_admin_api
from freshid.admin.api import metrics_endpoint
from freshid.admin.dashboard import create_dashboard
from freshid.admin.observability import Observability
from freshid.clock import Clock
from freshid.events.worker import background_worker
from freshid.protocol import (
    discovery,
    end_session,
    introspection,
    revocation,
    token_endpoint,
    userinfo,
)
from freshid.protocol.authorize import endpoint as authorize_endpoint
from freshid.provider import Provider
from freshid.settings import Settings
from freshid.storage import migrate, retention
from freshid.ui import account, interaction
from freshid.ui.methods import email_code as email_page
from freshid.ui.methods import passkey as passkey_page
from freshid.ui.methods import password as password_page
from freshid.ui.methods import totp as totp_page
from freshid.ui.methods import upstream as upstream_page
from freshid.ui.pages import STATIC_DIR, error_page
from freshid.web.access_log import AccessLog
from freshid.web.security import SecurityHeaders
from freshid.web.unavailable import DATABASE_UNAVAILABLE
from freshid.web.unavailable import handler as database_unavailable

log = logging.getLogger("freshid")

_JSON_PATHS = ("/token", "/userinfo", "/introspect", "/revoke", "/jwks", "/.well-known/")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(_JSON_PATHS)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _wants_json(request):
        code = "invalid_request" if exc.status_code < 500 else "server_error"
        return JSONResponse(
            {"error": code, "error_description": str(exc.detail)}, status_code=exc.status_code
        )
    title = "Page not found" if exc.status_code == 404 else "This request cannot be handled"
    return error_page(title, str(exc.detail), None, exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The exception goes to the log with its type only; its text may echo request data.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    if _wants_json(request):
        return JSONResponse({"error": "server_error"}, status_code=500)
    return error_page("Something went wrong", "Please try again in a moment.", "server_error", 500)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    provider: Provider | None = None,
    migrate_on_start: bool = True,
    webhook_worker: bool = True,
) -> Starlette:
    provider = provider or Provider(settings, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if migrate_on_start:
            migrate.upgrade(provider.db)
        provider.keyring(refresh=True)
        provider.db.start_checkpoints()
        async with (
            background_worker(provider.db, provider.now, enabled=webhook_worker),
            retention.background_pruner(
                provider.db,
                provider.now,
                retention.RetentionPolicy.from_settings(settings),
                settings.retention_interval,
            ) as pruner,
        ):
            app.state.pruner = pruner
            yield
        provider.password.close()
        provider.db.dispose()

    routes = [
        Route("/.well-known/openid-configuration", discovery.openid_configuration),
        Route("/jwks", discovery.jwks),
        Route("/authorize", authorize_endpoint.authorize, methods=["GET", "POST"]),
        Route("/token", token_endpoint.token, methods=["POST"]),
        Route("/userinfo", userinfo.userinfo, methods=["GET", "POST"]),
        Route("/introspect", introspection.introspect, methods=["POST"]),
        Route("/revoke", revocation.revoke, methods=["POST"]),
        Route("/logout", end_session.end_session, methods=["GET", "POST"]),
        Route("/logout/confirm", end_session.confirm, methods=["POST"]),
        Route("/interaction/{iid}", interaction.show),
        Route("/interaction/{iid}/switch", interaction.switch_user, methods=["POST"]),
        Route("/interaction/{iid}/password", password_page.submit, methods=["POST"]),
        Route("/interaction/{iid}/totp", totp_page.submit, methods=["POST"]),
        Route("/interaction/{iid}/recovery", totp_page.recovery, methods=["POST"]),
        Route("/interaction/{iid}/passkey", passkey_page.submit, methods=["POST"]),
        Route("/interaction/{iid}/email/send", email_page.send, methods=["POST"]),
        Route("/interaction/{iid}/email/verify", email_page.verify, methods=["POST"]),
        Route("/interaction/{iid}/fed/{cid}", upstream_page.start, methods=["POST"]),
        Route("/interaction/{iid}/sso", upstream_page.sso, methods=["POST"]),
        Route("/federation/{cid}/callback", upstream_page.callback),
        Route("/federation/{cid}/saml/acs", upstream_page.saml_acs, methods=["POST"]),
        Route("/federation/{cid}/saml/finish", upstream_page.saml_finish),
        Route("/federation/{cid}/saml/metadata", upstream_page.saml_metadata),
        Route("/account/federation/{cid}/link", upstream_page.link_start, methods=["GET", "POST"]),
        Route("/email/confirm/{token}", email_page.link_page),
        Route("/email/confirm/{token}", email_page.link_confirm, methods=["POST"]),
        Route("/account", account.show),
        Route("/account/passkeys/new", account.passkey_new),
        Route("/account/passkeys/new", account.passkey_register, methods=["POST"]),
        Route("/account/totp/new", account.totp_new),
        Route("/account/totp/confirm", account.totp_confirm, methods=["POST"]),
        Route("/account/recovery-codes/new", account.recovery_new, methods=["GET", "POST"]),
        Route(
            "/account/credentials/{cid}/remove", account.credential_remove, methods=["GET", "POST"]
        ),
        Route("/account/sessions/{sid}/revoke", account.session_revoke, methods=["GET", "POST"]),
        Route("/account/logout", account.logout, methods=["POST"]),
        Route("/dev/mail", account.dev_mail),
        Route("/metrics", metrics_endpoint),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Mount("/api/v1", app=create_admin_api(provider)),
        Mount("/admin", app=create_dashboard(provider)),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Observability),
            Middleware(AccessLog),
            Middleware(SecurityHeaders, hsts=settings.cookies_secure),
        ],
        exception_handlers={
            HTTPException: _http_error,
            # A database outage is "retry later" (503), not a failure of the request (500).
            **dict.fromkeys(DATABASE_UNAVAILABLE, database_unavailable(_wants_json)),
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.provider = provider
    app.state.pruner = None  # the lifespan's retention.Pruner, while it runs
    return app
