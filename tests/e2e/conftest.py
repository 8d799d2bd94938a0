"""Browser fixtures: one headless Chromium (the Debian package) per module, a fresh context per
test, FreshID on ``http://localhost:<port>`` with real SMTP, and a relying party whose redirect URI
is a tiny app of its own, so the browser really lands there."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.conftest import free_port, serve_in_thread
from tests.e2e.harness import IdP, running_idp
from tests.e2e.pages import Flow

CHROMIUM = os.environ.get("FRESHID_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def callback_base() -> Iterator[str]:
    """The relying app's redirect URI host: it only shows that the browser got back."""

    async def cb(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Back at Acme</title><p>Back at Acme</p>")

    port = free_port()
    stop = serve_in_thread(Starlette(routes=[Route("/cb", cb)]), port)
    yield f"http://127.0.0.1:{port}/cb"
    stop()


@pytest.fixture
def idp(database_url: str) -> Iterator[IdP]:
    with running_idp(database_url) as running:
        yield running


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def make_flow(idp: IdP, callback_base: str) -> Iterator[Callable[..., Flow]]:
    made: list[Flow] = []

    def make(page: Page, **client: Any) -> Flow:
        flow = Flow(idp, page, callback_base, **client)
        made.append(flow)
        return flow

    yield make
    for flow in made:
        flow.close()


@pytest.fixture
def flow(make_flow: Callable[..., Flow], page: Page) -> Flow:
    return make_flow(page)
