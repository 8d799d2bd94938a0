"""The whole demo story in headless Chromium, including the action-bound deletion with a passkey.

``freshid demo``'s two apps (:func:`freshid.demo.build`) run on ``http://localhost:<port>``
(passkeys need a domain name). The newcomer signs in eleven minutes "ago" (FreshID's clock is
shifted back), browses, reveals an API key after confirming it's them, changes billing, adds a
passkey at FreshID with Chromium's virtual authenticator, and deletes their Acme account through
an action-bound step-up answered with that passkey. FreshID's ``authentication.reauthenticated``
event names the action, and the console's activity page shows the guard's evidence.

Each console page is photographed at desktop (1280x900) and phone (390x844) size. The pictures go
to a temporary folder, or, to refresh the README's, to ``$FRESHID_SCREENSHOTS``::

    FRESHID_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/demo/test_demo_browser.py
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.acme_console.harness import DEMO_EMAIL, DEMO_PASSWORD, Stack, running_stack

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    # The story is about the browser; both storage backends are walked by test_demo_story.
    with running_stack(f"sqlite:///{tmp_path}/freshid.sqlite3") as running:
        yield running


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


class Camera:
    """One picture of each page at desktop and at phone size."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page, self.folder = page, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def shoot(self, name: str) -> None:
        desktop, phone = self.folder / f"{name}-desktop.png", self.folder / f"{name}-phone.png"
        self.page.screenshot(path=str(desktop))
        self.page.set_viewport_size(PHONE)  # type: ignore[arg-type]
        self.page.screenshot(path=str(phone))
        self.page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
        self.taken += [desktop, phone]


def add_virtual_passkey_device(page: Page) -> dict[str, Any]:
    """Chromium's virtual platform authenticator: resident keys, user verification passes."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return {"cdp": cdp, "id": added["authenticatorId"]}


def banner(page: Page) -> str:
    return page.locator(".proof-bar").inner_text()


def test_the_demo_story_in_a_browser(stack: Stack, page: Page, tmp_path: Path) -> None:
    camera = Camera(page, Path(os.environ.get("FRESHID_SCREENSHOTS") or tmp_path / "shots"))
    app = stack.app_url

    # --- signed out, then signed in eleven minutes ago ------------------------------------------
    page.goto(f"{app}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to Acme Console")
    camera.shoot("welcome")
    stack.idp_clock.offset = -660
    try:
        page.get_by_role("link", name="Sign in with FreshID").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
        page.locator("#email").fill(DEMO_EMAIL)
        page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"{app}/")
    finally:
        stack.idp_clock.offset = 0
    expect(page.get_by_role("heading", level=1)).to_have_text("Projects")
    assert "You proved it's you 11 min ago with your password" in banner(page)
    requirements = page.get_by_role("region", name="What needs a fresh proof")
    expect(requirements).to_contain_text("Needs a sign-in within 10 minutes.")
    expect(requirements).to_contain_text("Needs a sign-in within 5 minutes.")
    expect(requirements).to_contain_text(
        "Needs a passkey or authenticator code within 2 minutes, just for this action."
    )
    camera.shoot("dashboard")

    # --- browse, then reveal an API key after a step-up ---------------------------------------
    page.get_by_role("link", name="Rocket launcher").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rocket launcher")
    expect(page.locator("#reveal-needs")).to_contain_text("FreshID will ask you to confirm")
    camera.shoot("project")
    page.get_by_role("link", name="Reveal the Production key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it's you")
    expect(page.get_by_text("this app needs a sign-in within the last 10 minutes")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{app}/projects/rocket-launcher/keys/key-1")
    expect(page.get_by_role("status")).to_have_text("Shown because you proved it's you just now.")
    key = page.get_by_label("Copy this key into your Acme client").input_value()
    assert re.fullmatch(r"acme_live_[0-9a-f]{32}", key)
    assert "You proved it's you just now with your password" in banner(page)
    camera.shoot("api-key")

    # --- billing: the same proof covers it ----------------------------------------------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    expect(page.locator("#billing-needs")).to_contain_text("Your last proof covers this")
    page.get_by_label("Billing email").fill("finance@acme.example")
    page.get_by_role("radio", name=re.compile("Enterprise")).check()
    page.get_by_role("button", name="Save billing details").click()
    expect(page.get_by_role("status")).to_have_text("Your billing details were saved.")
    expect(page.get_by_role("region", name="Current details")).to_contain_text("Enterprise")
    camera.shoot("billing")

    # --- a passkey at FreshID -------------------------------------------------------------------
    device = add_virtual_passkey_device(page)
    page.goto(f"{stack.idp_url}/account/passkeys/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a passkey")
    page.get_by_label("Passkey name").fill("Work laptop")
    page.get_by_role("button", name="Create passkey").click()
    page.wait_for_url(f"{stack.idp_url}/account?notice=passkey_added")
    expect(page.get_by_role("status")).to_have_text("Your passkey was added.")
    page.goto(f"{app}/")

    # --- delete the account: a proof made for this deletion alone -----------------------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Danger zone").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Danger zone")
    expect(page.locator("#delete-needs")).to_contain_text(
        "Needs a passkey or authenticator code within 2 minutes, just for this action."
    )
    camera.shoot("danger-zone")
    page.get_by_label("I understand that my projects and API keys are deleted for good.").check()
    page.get_by_role("button", name="Delete my Acme account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Confirm it's you to delete your Acme account"
    )
    use_passkey = page.get_by_role("button", name="Use your passkey")
    if not use_passkey.is_visible():
        page.get_by_role("link", name="Use a passkey").click()
    use_passkey.click()
    page.wait_for_url(f"{app}/account/delete/confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete your Acme account?")
    expect(page.locator(".lead")).to_contain_text("with your passkey, for this deletion only")
    assert "with your passkey" in banner(page)
    camera.shoot("delete-confirm")
    page.get_by_role("button", name="Delete my Acme account").click()
    page.wait_for_url(f"{app}/")
    expect(page.get_by_role("status")).to_have_text("Your Acme account was deleted.")
    assert len(device["cdp"].send("WebAuthn.getCredentials", {"authenticatorId": device["id"]})[
        "credentials"
    ]) == 1  # fmt: skip

    reauth = stack.events("authentication.reauthenticated")
    assert reauth[-1].data["action"] == "account.delete"
    assert reauth[-1].data["method"] == "passkey"
    deleted_with = reauth[-1].data

    # --- the evidence -----------------------------------------------------------------------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Activity")
    entries = page.locator(".activity__item")
    expect(entries).to_have_count(3)
    deletion = entries.nth(0)
    expect(deletion).to_contain_text("Delete your Acme account")
    expect(deletion).to_contain_text("account.delete")
    expect(deletion).to_contain_text("passkey")
    expect(deletion).to_contain_text("Made for this action, used once")
    [evidence, billing, reveal] = stack.console.activity.all()[::-1]
    assert evidence.action == "account.delete" and evidence.bound
    assert evidence.auth_time == deleted_with["auth_time"]
    assert set(deleted_with["amr"]) == set(evidence.amr) and "user" in evidence.amr
    expect(deletion).to_contain_text(evidence.token_id)
    expect(deletion).to_contain_text(str(evidence.session))
    assert billing.token_id == reveal.token_id != evidence.token_id
    expect(entries.nth(1)).to_contain_text("Change billing details")
    expect(entries.nth(2)).to_contain_text("Reveal an API key")
    camera.shoot("activity")

    assert all(p.stat().st_size < 400_000 for p in camera.taken)
