"""What a user does on the hosted pages, as Playwright steps, and the relying app around them.

Inputs are found by their visible label and buttons by their accessible name, so these steps
also prove the forms are labelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import CDPSession, Page, expect

from freshid.methods import totp
from tests.conftest import DEMO_PASSWORD
from tests.e2e.harness import IdP, code_of, link_of
from tests.protocol.rp import AuthRequest, Callback, RelyingParty


class Flow:
    """One registered client: starts authorization requests in the page and redeems the code it
    gets back (Authlib, PKCE S256, nonce, ``iss`` and ID token validation)."""

    def __init__(self, idp: IdP, page: Page, redirect_uri: str, **client: Any) -> None:
        self.idp, self.page, self.redirect_uri = idp, page, redirect_uri
        client_id, secret = idp.create_client(redirect_uri, **client)
        self.rp = RelyingParty(idp.url, client_id, secret, redirect_uri)

    def close(self) -> None:
        self.rp.close()

    def start(self, **params: str) -> AuthRequest:
        request = self.rp.authorization_request(**params)
        self.page.goto(request.url)
        return request

    def finish(self, request: AuthRequest) -> dict[str, Any]:
        """Wait until the browser is back at the app, redeem the code, return the ID token."""
        self.page.wait_for_url(lambda url: url.startswith(self.redirect_uri + "?"))
        expect(self.page.get_by_text("Back at Acme")).to_be_visible()
        return self.rp.redeem(request, Callback(self.page.url)).id_claims


# --- steps on the hosted pages -------------------------------------------------------------------


def sign_in_with_password(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
    page.locator("#email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def confirm_with_password(page: Page, password: str = DEMO_PASSWORD) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text("Confirm it's you")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Continue").click()


def enter_code(page: Page, code: str, label: str = "6-digit code") -> None:
    page.get_by_label(label).fill(code)
    page.get_by_role("button", name="Continue").click()


def request_code_on_sign_in(page: Page, email: str) -> None:
    if not page.locator("#email-code-email").is_visible():
        page.get_by_text("Sign in with a code instead").click()
    page.locator("#email-code-email").fill(email)
    page.get_by_role("button", name="Email me a sign-in code").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")


def read_code(idp: IdP, email: str, count: int) -> str:
    return code_of(idp.mail.wait(email, count))


def read_link(idp: IdP, email: str, count: int) -> str:
    return link_of(idp.mail.wait(email, count))


def choose(page: Page, label: str) -> None:
    """Follow one of "Other ways to continue"."""
    page.get_by_role("region", name="Other ways to continue").get_by_role(
        "link", name=label
    ).click()


def alternatives(page: Page) -> list[str]:
    region = page.get_by_role("region", name="Other ways to continue")
    if region.count() == 0:
        return []
    return [t.strip() for t in region.get_by_role("link").all_inner_texts()]


def totp_code(idp: IdP, secret: str) -> str:
    return totp.code_at(secret, totp.step_at(idp.clock.now()))


def enrol_totp(page: Page, idp: IdP) -> tuple[str, list[str]]:
    """Account page → "Set up an authenticator app" → confirm; returns the secret and codes."""
    page.goto(f"{idp.url}/account")
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator(".secret__value").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    page.get_by_label("Code from the app").fill(totp_code(idp, secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Save your recovery codes")
    codes = [c.strip() for c in page.locator(".codes__item").all_inner_texts()]
    assert len(codes) == 10 and len(set(codes)) == 10
    page.get_by_role("link", name="I've saved them").click()
    expect(page.get_by_role("status")).to_have_text("Your authenticator app is set up.")
    return secret, codes


@dataclass
class VirtualAuthenticator:
    cdp: CDPSession
    id: str

    def credentials(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": self.id}
        )["credentials"]
        return found


def virtual_authenticator(page: Page) -> VirtualAuthenticator:
    """Chromium's virtual platform authenticator: resident keys, user verification passes."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    result = cdp.send(
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
    return VirtualAuthenticator(cdp, result["authenticatorId"])


def enrol_passkey(page: Page, idp: IdP, name: str = "Work laptop") -> None:
    page.goto(f"{idp.url}/account/passkeys/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a passkey")
    page.get_by_label("Passkey name").fill(name)
    page.get_by_role("button", name="Create passkey").click()
    page.wait_for_url(f"{idp.url}/account?notice=passkey_added")
    expect(page.get_by_role("status")).to_have_text("Your passkey was added.")
    expect(page.get_by_text(name, exact=True)).to_be_visible()


def sign_out(page: Page, idp: IdP) -> None:
    page.goto(f"{idp.url}/account")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
