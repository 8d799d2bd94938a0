"""A federated step-up end to end in headless Chromium: sign in through the upstream, then a
request with ``max_age`` sends the user back upstream, which must ask for the password again."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

pytest.importorskip("playwright")

from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.conftest import RunningServer, free_port, serve_in_thread
from tests.federation.conftest import connect
from tests.federation.peers import OidcPeer
from tests.protocol.conftest import EventReader, RPFactory
from tests.protocol.rp import Callback, RelyingParty

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("FRESHID_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: this test is about the browser, and the storage paths it takes are covered
    on both backends by test_oidc_upstream."""
    return f"sqlite:///{tmp_path}/freshid.sqlite3"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_callback() -> Iterator[str]:
    """The relying app's redirect URI: a page that only says the browser got back."""

    async def cb(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Back at the app</title><p>Back</p>")

    port = free_port()
    stop = serve_in_thread(Starlette(routes=[Route("/cb", cb)]), port)
    yield f"http://127.0.0.1:{port}/cb"
    stop()


def _upstream_sign_in(page: Page, account: str, auth_age: int = 0) -> None:
    page.wait_for_url("**/interaction/**")
    page.fill("input[name=account]", account)
    page.fill("input[name=auth_age]", str(auth_age))
    page.click("button[type=submit]")


def _back_at_app(page: Page, rp: RelyingParty) -> Callback:
    page.wait_for_url(rp.redirect_uri + "?**")
    return Callback(page.url)


def test_federated_step_up_in_a_real_browser(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    events: EventReader,
    chromium: Browser,
    app_callback: str,
) -> None:
    connect(server, upstream)
    rp = make_rp(redirect_uri=app_callback)
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        request = rp.authorization_request()
        page.goto(request.url)
        page.get_by_role("button", name="Continue with Corp SSO").click()
        _upstream_sign_in(page, "alice-sub", auth_age=900)
        first = rp.redeem(request, _back_at_app(page, rp))
        assert server.clock.now() - first.id_claims["auth_time"] >= 900

        step_up = rp.authorization_request(max_age="300")
        page.goto(step_up.url)
        assert page.title().startswith("Confirm it")
        assert page.get_by_text("Your last sign-in was 15 minutes ago").is_visible()
        page.get_by_role("button", name="Continue with Corp SSO").click()
        # The upstream asks again: prompt=login and max_age=0 were sent.
        page.wait_for_selector("text=prompt: login")
        _upstream_sign_in(page, "alice-sub")
        callback = _back_at_app(page, rp)
        assert dict(parse_qsl(urlsplit(callback.url).query))["state"] == step_up.state
        tokens = rp.redeem(step_up, callback)
    finally:
        context.close()
    assert tokens.id_claims["sid"] == first.id_claims["sid"]
    assert server.clock.now() - tokens.id_claims["auth_time"] <= 5
    reauth = events("authentication.reauthenticated")[-1]
    assert reauth.data["method"] == "fed:corp"
    assert reauth.data["upstream"]["forced"] is True
