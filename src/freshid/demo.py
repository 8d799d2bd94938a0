"""``freshid demo``: the provider and the Acme Console relying app, seeded, on loopback.

Development only: the demo user's password is printed, and the demo client's secret is replaced
at every start (it is stored only as a digest, so the demo cannot read the old one back).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import warnings

import uvicorn
from starlette.applications import Starlette

from freshid.app import create_app
from freshid.clock import SystemClock
from freshid.provider import Provider
from freshid.settings import Settings
from freshid.storage import clients as client_store
from freshid.storage import migrate
from freshid.storage import users as user_store

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "fresh-demo-password"
DEMO_CLIENT_ID = "acme-console"


def seed(provider: Provider, app_url: str) -> str:
    """Create the demo user and client if missing; returns the client's new secret."""
    now = SystemClock().now()
    migrate.upgrade(provider.db)
    with provider.db.write() as conn:
        if user_store.by_email(conn, DEMO_EMAIL) is None:
            user_store.create(conn, DEMO_EMAIL, provider.password.hash_sync(DEMO_PASSWORD), now)
        if client_store.by_id(conn, DEMO_CLIENT_ID) is None:
            client_store.create(
                conn,
                "Acme Console",
                [f"{app_url}/callback"],
                now,
                client_id=DEMO_CLIENT_ID,
                post_logout_redirect_uris=[f"{app_url}/"],
            )
        else:  # the demo may have moved port or host since the database was seeded
            client_store.set_redirect_uris(
                conn, DEMO_CLIENT_ID, [f"{app_url}/callback"], [f"{app_url}/"]
            )
        return client_store.rotate_secret(conn, DEMO_CLIENT_ID)


def _server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    # Access logs are off: callback URLs carry authorization codes.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    return uvicorn.Server(config)


def run_demo(settings: Settings, app_port: int = 8001) -> int:
    # Authlib nudges towards its httpx2 fork; the demo works with httpx, so keep the console quiet.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from acme_console import AcmeConfig
    from acme_console import create_app as create_acme

    provider = Provider(settings)
    # "localhost", not 127.0.0.1: browsers refuse passkeys for IP addresses.
    app_url = f"http://localhost:{app_port}"
    secret = seed(provider, app_url)
    acme = create_acme(
        AcmeConfig(
            issuer=provider.issuer,
            client_id=DEMO_CLIENT_ID,
            client_secret=secret,
            base_url=app_url,
            session_secret=secrets.token_hex(32),
        )
    )
    print(
        "\nFreshID demo is running.\n"
        f"  Acme Console (open this): {app_url}/\n"
        f"  FreshID issuer:           {provider.issuer}\n"
        f"  Discovery:                {provider.issuer}/.well-known/openid-configuration\n"
        f"  Sign in as:               {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        f"  Your FreshID account:     {provider.issuer}/account\n"
        f"  Sent mail (dev only):     {provider.issuer}/dev/mail\n"
        f"  Database:                 {settings.database_url}\n"
        "Press Ctrl+C to stop.\n",
        flush=True,
    )

    async def main() -> None:
        servers = [
            _server(create_app(settings, provider=provider), settings.host, settings.port),
            _server(acme, settings.host, app_port),
        ]
        await asyncio.gather(*(s.serve() for s in servers))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
