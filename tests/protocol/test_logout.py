"""RP-Initiated Logout 1.0: a confirmed, CSRF-protected sign-out that honours only registered
``post_logout_redirect_uri`` values."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.conftest import ADA, BrowserFactory, EventReader
from tests.protocol.rp import Browser, Callback, Page, RelyingParty, sign_in

BYE = "http://127.0.0.1:9/bye"  # registered for ``rp`` in conftest


def _logout_page(rp: RelyingParty, browser: Browser, **params: str) -> Page:
    landing = browser.open(f"{rp.metadata['end_session_endpoint']}?{urlencode(params)}")
    assert isinstance(landing, Page)
    return landing


def _login_required(rp: RelyingParty, browser: Browser) -> bool:
    request = rp.authorization_request(prompt="none")
    landing = browser.open(request.url)
    assert isinstance(landing, Callback)
    return rp.check_response(request, landing).get("error") == "login_required"


def test_rp_initiated_logout_needs_a_confirmed_post_then_redirects_and_ends_the_session(
    server: RunningServer,
    ada: str,
    rp: RelyingParty,
    browser: Browser,
    make_browser: BrowserFactory,
    events: EventReader,
) -> None:
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    cookie = browser.session_cookie
    assert cookie is not None

    page = _logout_page(
        rp, browser, id_token_hint=tokens.id_token, post_logout_redirect_uri=BYE, state="bye-1"
    )
    assert page.status == 200 and page.kind == "logout"
    assert not _login_required(rp, browser)  # showing the page signs nobody out

    form = page.form("/logout/confirm")
    assert ("confirm", "yes") in form.buttons and ("confirm", "no") in form.buttons
    declined = browser.submit(form, confirm="no")
    assert isinstance(declined, Page) and declined.status == 200
    assert not _login_required(rp, browser)
    forged = browser.submit(form, confirm="yes", csrf_token="forged")  # a cross-site POST
    assert isinstance(forged, Page) and forged.status == 403
    assert not _login_required(rp, browser)

    landing = browser.submit(form, confirm="yes")
    assert isinstance(landing, Callback)
    assert landing.base == BYE
    assert landing.params == {"state": "bye-1"}

    assert _login_required(rp, browser)
    assert _login_required(rp, make_browser({"freshid_session": cookie}))  # revoked, not forgotten
    [revoked] = events("session.revoked")
    assert revoked.session_id == tokens.id_claims["sid"] and revoked.user_id == ada


def test_unregistered_post_logout_redirect_uri_gets_an_error_page(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    for uri in ("https://attacker.example/bye", f"{BYE}?x=1", rp.redirect_uri):
        page = _logout_page(
            rp, browser, id_token_hint=tokens.id_token, post_logout_redirect_uri=uri
        )
        assert page.status == 400 and page.kind == "error", uri
    # Without a client to register it against, no redirect URI can be honoured either.
    page = _logout_page(rp, browser, post_logout_redirect_uri=BYE)
    assert page.status == 400 and page.kind == "error"
    assert not _login_required(rp, browser)
