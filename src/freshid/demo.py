"""``freshid demo``: the provider and the Acme Console relying app, seeded, on loopback.

Development only: the demo user's password is printed, and the demo client's secret is replaced
at every start (it is stored only as a digest, so the demo cannot read the old one back).

The provider and the console load one action catalog, ``examples/acme_console/actions.toml``: the
console's guard enforces it, and FreshID (its ``policy_file``) uses it to say on "Confirm it's you"
what the user is confirming and which methods an action-bound proof accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from freshid.app import create_app
from freshid.clock import Clock, SystemClock
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


@dataclass(frozen=True)
class Demo:
    """The two apps of the demo, wired together, not yet serving."""

    settings: Settings
    provider: Provider
    idp: Starlette
    console: Starlette
    app_url: str


def build(
    settings: Settings,
    app_port: int = 8001,
    *,
    clock: Clock | None = None,
    console_clock: Callable[[], float] = time.time,
) -> Demo:
    """Seed the provider and build both apps: FreshID with the console's catalog as its
    ``policy_file``, and Acme Console as a registered client. ``clock`` and ``console_clock``
    let tests move the provider's and the console's time."""
    from acme_console import DEFAULT_POLICY_FILE, AcmeConfig
    from acme_console import create_app as create_acme

    # One catalog for both sides: the console's actions must be known to the provider.
    settings = dataclasses.replace(settings, policy_file=str(DEFAULT_POLICY_FILE))
    provider = Provider(settings, clock)
    # "localhost", not 127.0.0.1: browsers refuse passkeys for IP addresses.
    app_url = f"http://localhost:{app_port}"
    secret = seed(provider, app_url)
    console = create_acme(
        AcmeConfig(
            issuer=provider.issuer,
            client_id=DEMO_CLIENT_ID,
            client_secret=secret,
            base_url=app_url,
            session_secret=secrets.token_hex(32),
            policy_file=DEFAULT_POLICY_FILE,
        ),
        clock=console_clock,
    )
    return Demo(settings, provider, create_app(settings, provider=provider), console, app_url)


def run_demo(settings: Settings, app_port: int = 8001) -> int:
    # Authlib nudges towards its httpx2 fork; the demo works with httpx, so keep the console quiet.
    # Authlib installs an "always" filter for its warnings when first imported: ours goes after.
    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    demo = build(settings, app_port)
    provider, settings = demo.provider, demo.settings
    print(
        "\nFreshID demo is running.\n"
        f"  Acme Console (open this): {demo.app_url}/\n"
        f"  FreshID issuer:           {provider.issuer}\n"
        f"  Discovery:                {provider.issuer}/.well-known/openid-configuration\n"
        f"  Sign in as:               {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        f"  Your FreshID account:     {provider.issuer}/account\n"
        f"  Sent mail (dev only):     {provider.issuer}/dev/mail\n"
        f"  Action catalog:           {settings.policy_file}\n"
        f"  Database:                 {settings.database_url}\n"
        "Press Ctrl+C to stop.\n",
        flush=True,
    )

    async def main() -> None:
        servers = [
            _server(demo.idp, settings.host, settings.port),
            _server(demo.console, settings.host, app_port),
        ]
        await asyncio.gather(*(s.serve() for s in servers))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
