"""Every sign-in method in headless Chromium, as a first sign-in and as a step-up.

A step-up is a second authorization request with ``max_age=0`` in the same browser: the user
proves it again on "Confirm it's you" and the relying app gets an ID token with the same ``sid``
and a later ``auth_time``. The first sign-in happens minutes in the past (the provider's clock is
shifted), so "later" is visible at one-second precision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import pages
from tests.e2e.harness import IdP
from tests.e2e.pages import Flow
from tests.protocol.rp import shifted

pytestmark = pytest.mark.e2e

ADA = "ada@example.com"
GRACE = "grace@example.com"
PAST = -120


@contextmanager
def in_the_past(idp: IdP, seconds: int = PAST) -> Iterator[None]:
    with shifted(idp.clock, seconds):
        yield


def assert_step_up(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert second["sub"] == first["sub"]
    assert second["sid"] == first["sid"]
    assert second["auth_time"] > first["auth_time"]


def password_sign_in(flow: Flow, page: Page, email: str = ADA) -> dict[str, Any]:
    request = flow.start()
    pages.sign_in_with_password(page, email)
    return flow.finish(request)


# --- password ------------------------------------------------------------------------------------


def test_password_sign_in_and_step_up(idp: IdP, flow: Flow, page: Page) -> None:
    idp.create_user(ADA)
    with in_the_past(idp):
        first = password_sign_in(flow, page)
    assert first["amr"] == ["pwd"]

    request = flow.start(max_age="0")
    pages.confirm_with_password(page)
    second = flow.finish(request)
    assert_step_up(first, second)
    assert second["amr"] == ["pwd"]
    reauth = idp.events("authentication.reauthenticated")
    assert [e.data["method"] for e in reauth] == ["password"]
    assert reauth[0].session_id == first["sid"]


# --- emailed code and link -----------------------------------------------------------------------


def test_emailed_code_sign_in_and_step_up(idp: IdP, flow: Flow, page: Page) -> None:
    idp.create_user(ADA)
    with in_the_past(idp):
        request = flow.start()
        pages.request_code_on_sign_in(page, ADA)
        pages.enter_code(page, pages.read_code(idp, ADA, 1))
        first = flow.finish(request)
    assert first["amr"] == ["email"]

    request = flow.start(max_age="0")
    pages.choose(page, "Email me a code")
    page.get_by_role("button", name="Email me a code").click()
    pages.enter_code(page, pages.read_code(idp, ADA, 2))
    second = flow.finish(request)
    assert_step_up(first, second)
    assert second["amr"] == ["email"]
    assert [e.data["method"] for e in idp.events("authentication.reauthenticated")] == [
        "email_code"
    ]


def test_emailed_link_sign_in_and_step_up(idp: IdP, flow: Flow, page: Page) -> None:
    idp.create_user(ADA)
    with in_the_past(idp):
        request = flow.start()
        pages.request_code_on_sign_in(page, ADA)
        page.goto(pages.read_link(idp, ADA, 1))
        expect(page.get_by_role("heading", level=1)).to_have_text("Continue signing in?")
        expect(page.get_by_text(ADA)).to_be_visible()
        page.get_by_role("button", name="Continue").click()
        first = flow.finish(request)
    assert first["amr"] == ["email"]

    request = flow.start(max_age="0")
    pages.choose(page, "Email me a code")
    page.get_by_role("button", name="Email me a code").click()
    page.goto(pages.read_link(idp, ADA, 2))
    expect(page.get_by_role("heading", level=1)).to_have_text("Continue signing in?")
    page.get_by_role("button", name="Continue").click()
    second = flow.finish(request)
    assert_step_up(first, second)


# --- authenticator app and recovery codes ---------------------------------------------------


MFA = "urn:freshid:acr:mfa"


def test_totp_as_second_factor_and_as_step_up(idp: IdP, flow: Flow, page: Page) -> None:
    idp.create_user(ADA)
    with in_the_past(idp, -240):
        password_sign_in(flow, page)
        secret, _codes = pages.enrol_totp(page, idp)
        pages.sign_out(page, idp)

    with in_the_past(idp, -120):
        request = flow.start(acr_values=MFA)
        pages.sign_in_with_password(page, ADA)
        # The password alone is one factor: the same sign-in continues with the app.
        expect(page.get_by_role("heading", level=1)).to_contain_text("Confirm it's you")
        pages.enter_code(page, pages.totp_code(idp, secret), "Code from your authenticator app")
        first = flow.finish(request)
    assert sorted(first["amr"]) == ["mfa", "otp", "pwd"]
    assert first["acr"] == MFA
    assert [e.data["method"] for e in idp.events("authentication.succeeded")][-2:] == [
        "password",
        "totp",
    ]

    request = flow.start(max_age="0")
    # The strongest method this user has comes first.
    expect(page.get_by_label("Code from your authenticator app")).to_be_visible()
    pages.enter_code(page, pages.totp_code(idp, secret), "Code from your authenticator app")
    second = flow.finish(request)
    assert_step_up(first, second)
    assert second["amr"] == ["otp"]
    page.goto(f"{idp.url}/account")
    methods = page.locator(".facts__row", has_text="Methods")
    expect(methods).to_have_text("MethodsAuthenticator app")


def test_recovery_code_works_once(idp: IdP, flow: Flow, page: Page) -> None:
    _secret, codes = idp.add_totp(idp.create_user(ADA))
    with in_the_past(idp, -120):
        request = flow.start(acr_values=MFA)
        pages.sign_in_with_password(page, ADA)
        pages.choose(page, "Use a recovery code")
        pages.enter_code(page, codes[0].lower(), "Recovery code")  # typed loosely
        first = flow.finish(request)
    assert sorted(first["amr"]) == ["mfa", "otp", "pwd"]

    request = flow.start(max_age="0")
    pages.choose(page, "Use a recovery code")
    pages.enter_code(page, codes[0], "Recovery code")
    expect(page.get_by_role("alert")).to_have_text("That recovery code is not valid.")
    pages.enter_code(page, codes[1], "Recovery code")
    second = flow.finish(request)
    assert_step_up(first, second)
    assert [e.data["reason"] for e in idp.failures("recovery_code")] == ["invalid_code"]

    page.goto(f"{idp.url}/account")
    expect(page.get_by_text("8 of 10 codes left")).to_be_visible()


# --- passkeys ----------------------------------------------------------------------------------


def test_passkey_enrol_sign_in_without_password_and_step_up(
    idp: IdP, flow: Flow, page: Page
) -> None:
    idp.create_user(ADA)
    authenticator = pages.virtual_authenticator(page)
    with in_the_past(idp, -240):
        password_sign_in(flow, page)
        pages.enrol_passkey(page, idp)
        pages.sign_out(page, idp)
    [stored] = authenticator.credentials()
    assert stored["isResidentCredential"] and stored["rpId"] == "localhost"

    with in_the_past(idp):
        request = flow.start()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
        page.get_by_role("button", name="Sign in with a passkey").click()
        first = flow.finish(request)
    assert sorted(first["amr"]) == ["hwk", "mfa", "user"]
    assert first["acr"] == "urn:freshid:acr:phr"

    request = flow.start(max_age="0")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Confirm it's you")
    page.get_by_role("button", name="Use your passkey").click()
    second = flow.finish(request)
    assert_step_up(first, second)
    assert authenticator.credentials()[0]["signCount"] >= 3  # registration, sign-in, step-up


# --- choosing, "Not you?", and the account page ------------------------------------------------


def test_reauth_page_offers_what_the_user_has_best_first(
    idp: IdP, make_flow: Any, page: Page
) -> None:
    flow = make_flow(page)
    idp.add_totp(idp.create_user(ADA))
    idp.create_user(GRACE)
    pages.virtual_authenticator(page)
    with in_the_past(idp, -240):
        password_sign_in(flow, page, GRACE)
    # Grace has a password only (an emailed code is always possible).
    flow.start(max_age="0")
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    assert pages.alternatives(page) == ["Email me a code"]
    pages.sign_out(page, idp)

    password_sign_in(flow, page)
    pages.enrol_passkey(page, idp)
    flow.start(max_age="0")
    expect(page.get_by_role("button", name="Use your passkey")).to_be_visible()
    assert pages.alternatives(page) == [
        "Use your authenticator app",
        "Use your password",
        "Email me a code",
        "Use a recovery code",
    ]
    # Sent from one to another: the password form, with the passkey now among the others.
    pages.choose(page, "Use your password")
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    assert pages.alternatives(page)[0] == "Use a passkey"

    # An essential phishing-resistant acr: only the passkey can give it.
    claims = '{"id_token":{"acr":{"essential":true,"values":["urn:freshid:acr:phr"]}}}'
    request = flow.start(claims=claims)
    expect(page.get_by_role("button", name="Use your passkey")).to_be_visible()
    assert pages.alternatives(page) == []
    page.get_by_role("button", name="Use your passkey").click()
    assert flow.finish(request)["acr"] == "urn:freshid:acr:phr"


def test_not_you_signs_in_someone_else_with_a_new_session(idp: IdP, flow: Flow, page: Page) -> None:
    idp.create_user(ADA)
    idp.create_user(GRACE)
    with in_the_past(idp):
        first = password_sign_in(flow, page)

    request = flow.start(max_age="0")
    expect(page.get_by_text(ADA)).to_be_visible()
    page.get_by_role("button", name="Not you? Sign in as someone else").click()
    pages.sign_in_with_password(page, GRACE)
    second = flow.finish(request)
    assert second["sub"] != first["sub"]
    assert second["sid"] != first["sid"]
    revoked = idp.events("session.revoked")
    assert [(e.session_id, e.data.get("reason")) for e in revoked] == [
        (first["sid"], "replaced_by_other_user")
    ]


def test_account_changes_ask_for_a_fresh_proof(
    idp: IdP, flow: Flow, page: Page, context: Any
) -> None:
    secret, _codes = idp.add_totp(idp.create_user(ADA))
    password_sign_in(flow, page)
    # A second session elsewhere, to sign out from here.
    other = context.browser.new_context()
    try:
        other_page = other.new_page()
        other_flow = Flow(idp, other_page, flow.redirect_uri)
        password_sign_in(other_flow, other_page)
        other_flow.close()

        with shifted(idp.clock, 301):
            page.goto(f"{idp.url}/account")
            page.get_by_role("button", name="Remove authenticator app").click()
            expect(page.get_by_role("heading", level=1)).to_have_text(
                "Confirm it's you to remove a sign-in method"
            )
            code = pages.totp_code(idp, secret)
            pages.enter_code(page, code, "Code from your authenticator app")
            expect(page.get_by_role("heading", level=1)).to_have_text("Remove “Authenticator app”?")
            page.get_by_role("button", name="Remove").click()
            expect(page.get_by_role("status")).to_have_text("The sign-in method was removed.")
            expect(page.get_by_text("Recovery codes")).to_have_count(0)

        with shifted(idp.clock, 301 + 601):
            page.goto(f"{idp.url}/account")
            page.get_by_role("button", name="Sign out this session").click()
            expect(page.get_by_role("heading", level=1)).to_have_text(
                "Confirm it's you to sign out another session"
            )
            pages.confirm_with_password(page)
            expect(page.get_by_role("heading", level=1)).to_have_text("Sign out that session?")
            page.get_by_role("button", name="Sign it out").click()
            expect(page.get_by_role("status")).to_have_text("That session was signed out.")
            expect(page.get_by_role("button", name="Sign out this session")).to_have_count(0)
            # The other browser is signed out: the app's next request asks it to sign in.
            other_page.goto(f"{idp.url}/account")
            expect(other_page.get_by_role("heading", level=1)).to_contain_text("Sign in")
    finally:
        other.close()
    actions = [e.data.get("action") for e in idp.events("authentication.reauthenticated")]
    assert actions == ["account.method.remove", "account.session.revoke"]
    assert [e.data["method"] for e in idp.events("credential.removed")] == ["totp"]
