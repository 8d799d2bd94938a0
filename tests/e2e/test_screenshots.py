"""Screenshots of every hosted page at desktop (1280x900) and phone (390x844) widths.

They go to ``artifacts/screenshots/`` (git-ignored) for people to look at; the test itself only
checks that each page rendered what it should and that nothing is wider than the phone screen.
Pages do not depend on the store, so this runs on SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import pages
from tests.e2e.harness import IdP, running_idp
from tests.e2e.pages import Flow
from tests.protocol.rp import shifted

OUT = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
pytestmark = pytest.mark.e2e

ADA = "ada@example.com"


@pytest.fixture
def sqlite_idp(tmp_path: Path) -> Iterator[IdP]:
    with running_idp(f"sqlite:///{tmp_path}/freshid.sqlite3") as idp:
        yield idp


def shoot(page: Page, name: str) -> None:
    """Both widths; at phone width the page must not scroll sideways."""
    OUT.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(OUT / f"{name}-phone.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} is {overflow}px wider than a phone screen"
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(OUT / f"{name}-desktop.png"), full_page=True)


def heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text(text)


def test_every_hosted_page(sqlite_idp: IdP, page: Page, callback_base: str) -> None:
    idp = sqlite_idp
    idp.create_user(ADA)
    flow = Flow(idp, page, callback_base, post_logout_redirect_uris=[callback_base])
    pages.virtual_authenticator(page)
    try:
        _every_page(idp, flow, page)
    finally:
        flow.close()


def _every_page(idp: IdP, flow: Flow, page: Page) -> None:
    # Signing in, with a code and its link.
    with shifted(idp.clock, -600):
        request = flow.start()
        heading(page, "Sign in to Acme Console")
        shoot(page, "01-sign-in")
        page.locator("#email").fill(ADA)
        page.get_by_label("Password", exact=True).fill("not my password")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("alert")).to_be_visible()
        shoot(page, "02-sign-in-error")
        page.get_by_text("Sign in with a code instead").click()
        shoot(page, "03-sign-in-code-open")
        pages.request_code_on_sign_in(page, ADA)
        shoot(page, "04-email-code-entry")
        page.get_by_label("6-digit code").fill("000000")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_be_visible()
        shoot(page, "05-email-code-entry-error")
        page.goto(pages.read_link(idp, ADA, 1))
        heading(page, "Continue signing in?")
        shoot(page, "06-email-link-confirm")
        page.get_by_role("button", name="Continue").click()
        flow.finish(request)

        # The account page and enrolment.
        page.goto(f"{idp.url}/account")
        heading(page, "Your account")
        shoot(page, "07-account-password-only")
        page.get_by_role("link", name="Set up an authenticator app").click()
        heading(page, "Set up an authenticator app")
        shoot(page, "08-totp-enrol")
        page.get_by_label("Code from the app").fill("000000")
        page.get_by_role("button", name="Turn on").click()
        expect(page.get_by_role("alert")).to_be_visible()
        shoot(page, "09-totp-enrol-error")
        secret = page.locator(".secret__value").inner_text().replace(" ", "")
        page.get_by_label("Code from the app").fill(pages.totp_code(idp, secret))
        page.get_by_role("button", name="Turn on").click()
        heading(page, "Save your recovery codes")
        shoot(page, "10-recovery-codes")
        page.get_by_role("link", name="I've saved them").click()
        page.goto(f"{idp.url}/account/passkeys/new")
        heading(page, "Add a passkey")
        shoot(page, "11-passkey-enrol")
        page.get_by_role("button", name="Create passkey").click()
        page.wait_for_url(f"{idp.url}/account?notice=passkey_added")
        shoot(page, "12-account")

    # "Confirm it's you", one variant per method.
    request = flow.start(max_age="0")
    heading(page, "Confirm it's you")
    shoot(page, "13-reauth-passkey")
    base = page.url.split("?")[0]
    for method, name in (
        ("totp", "14-reauth-totp"),
        ("password", "15-reauth-password"),
        ("recovery_code", "16-reauth-recovery-code"),
        ("email_code", "17-reauth-email"),
    ):
        page.goto(f"{base}?method={method}")
        heading(page, "Confirm it's you")
        shoot(page, name)
    page.get_by_role("button", name="Email me a code").click()
    shoot(page, "18-reauth-email-code-entry")
    pages.choose(page, "Use your authenticator app")
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_be_visible()
    shoot(page, "19-reauth-totp-error")
    pages.enter_code(page, pages.totp_code(idp, secret), "Code from your authenticator app")
    flow.finish(request)

    # An account change with an old proof: "Confirm it's you to ...", then its confirm page.
    with shifted(idp.clock, 301):
        page.goto(f"{idp.url}/account")
        page.get_by_role("button", name="Remove passkey").click()
        heading(page, "Confirm it's you to remove a sign-in method")
        shoot(page, "20-reauth-account-action")
        page.get_by_role("button", name="Use your passkey").click()
        heading(page, "Remove “Passkey”?")
        shoot(page, "21-confirm")
        page.get_by_role("link", name="Cancel").click()

        # The error page, and signing out.
        page.goto(f"{idp.url}/interaction/no-such-interaction")
        heading(page, "This sign-in request has expired")
        shoot(page, "22-error")
        page.goto(f"{idp.url}/logout?client_id={flow.rp.client_id}")
        heading(page, "Sign out?")
        shoot(page, "23-logout-confirm")
        page.get_by_role("button", name="Sign out", exact=True).click()
        page.goto(f"{idp.url}/account")
        heading(page, "Sign in")
        page.goto(f"{idp.url}/logout")
        shoot(page, "24-logout-not-signed-in")
