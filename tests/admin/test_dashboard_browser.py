"""The dashboard in a real browser (Debian's Chromium through Playwright), with screenshots.

An administrator signs in on the hosted page, reads the dashboard, and signs out one of a user's
sessions; ten minutes later a change asks "Confirm it's you" first. Screenshots at desktop and
phone widths go to ``artifacts/screenshots/`` (git-ignored). SQLite only: the page does not
depend on the store (test_dashboard.py covers both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshid.app import create_app
from freshid.clock import OffsetClock
from freshid.provider import Provider
from freshid.settings import load_settings
from tests.admin.dashboard_data import seed
from tests.conftest import DEMO_PASSWORD, RunningServer, free_port, serve_in_thread
from tests.protocol.rp import shifted

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("FRESHID_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
OUT = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium on this machine"),
]
ADMIN = "ops@example.com"


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[RunningServer]:
    port = free_port()
    clock = OffsetClock()
    settings = load_settings(
        environ={}, database_url=f"sqlite:///{tmp_path}/freshid.sqlite3", port=port
    )
    provider = Provider(settings, clock)
    stop = serve_in_thread(create_app(settings, provider=provider), port)
    yield RunningServer(f"http://127.0.0.1:{port}", provider, clock, settings)
    stop()


def _shoot(page: object, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.screenshot(path=str(OUT / f"{name}-phone.png"), full_page=True)  # type: ignore[attr-defined]
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")  # type: ignore[attr-defined]
    if overflow > 0:
        wide = page.evaluate(  # type: ignore[attr-defined]
            "[...document.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right >"
            " window.innerWidth).slice(0, 8).map(e => e.tagName + '.' + e.className)"
        )
        raise AssertionError(f"{name} is {overflow}px wider than a phone screen: {wide}")
    page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page.screenshot(path=str(OUT / f"{name}-desktop.png"), full_page=True)  # type: ignore[attr-defined]


def test_the_dashboard_in_a_browser(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    seed(server, server.create_user(ADMIN))
    expect = playwright.expect
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(server.url + "/admin/")
            expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
            page.locator("#email").fill(ADMIN)
            page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("How fresh is the trust")
            expect(page.get_by_role("img", name="Live sessions by proof age")).to_be_visible()
            expect(page.get_by_role("cell", name="billing.change")).to_be_visible()
            _shoot(page, "admin-01-dashboard")
            page.get_by_role("link", name="Last 24h").click()
            expect(page.get_by_role("link", name="Last 24h")).to_have_attribute(
                "aria-current", "page"
            )
            page.get_by_role("button", name="Sign out session bobsess1").click()
            expect(page.get_by_text("The session was signed out.")).to_be_visible()
            with shifted(server.clock, 600):
                page.get_by_role("button", name="Re-enable").click()
                expect(page.get_by_role("heading", level=1)).to_contain_text("Confirm it's you")
                _shoot(page, "admin-02-confirm-for-a-change")
                page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
                page.get_by_role("button", name="Continue").click()
                expect(page.get_by_role("heading", level=1)).to_contain_text("Re-enable")
                page.get_by_role("button", name="Re-enable").click()
                expect(page.get_by_text("The webhook endpoint is enabled again.")).to_be_visible()
                _shoot(page, "admin-03-after-a-change")
            # The CSP forbids inline script and style: the page must not have needed any.
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()
