"""Federated sign-in and step-up against a real upstream OpenID Provider (oidc-provider)."""

from __future__ import annotations

import pytest

from freshid.freshness.levels import ACR_MFA
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.federation.conftest import connect
from tests.federation.peers import FedBrowser, OidcPeer, replace_param
from tests.protocol.conftest import REDIRECT_URI, EventReader, RPFactory, UserFactory
from tests.protocol.rp import Callback, Page, RelyingParty, Tokens

pytestmark = pytest.mark.e2e


def _upstream_login(
    browser: FedBrowser, page: Page | Callback, account: str, **fields: str
) -> Page | Callback:
    assert isinstance(page, Page) and page.title == "Upstream sign-in", page
    return browser.submit(page, page.forms[0], account=account, **fields)


def _continue_with(
    browser: FedBrowser, page: Page | Callback, cid: str = "corp"
) -> Page | Callback:
    assert isinstance(page, Page), page
    return browser.submit(page, page.form(f"/fed/{cid}"))


def test_sign_in_creates_user_just_in_time(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    connect(server, upstream)
    rp = make_rp()
    request = rp.authorization_request()
    login = fed_browser.open(request.url)
    at_upstream = _continue_with(fed_browser, login)
    done = _upstream_login(fed_browser, at_upstream, "alice-sub", auth_age="30")
    assert isinstance(done, Callback), events("authentication.failed")
    tokens = rp.redeem(request, done)
    claims = tokens.id_claims
    assert "fed" in claims["amr"]
    # The session is dated by the upstream's own auth_time, not by the moment we heard of it.
    assert server.clock.now() - claims["auth_time"] >= 29
    succeeded = events("authentication.succeeded")[-1]
    assert succeeded.data["method"] == "fed:corp"
    assert succeeded.data["upstream"]["subject"] == "alice-sub"
    assert succeeded.data["upstream"]["connection"] == "corp"
    assert events("user.created")


def _sign_in(
    browser: FedBrowser, rp: RelyingParty, account: str = "alice-sub", auth_age: int = 0
) -> Tokens:
    request = rp.authorization_request()
    at_upstream = _continue_with(browser, browser.open(request.url))
    done = _upstream_login(browser, at_upstream, account, auth_age=str(auth_age))
    assert isinstance(done, Callback), done
    return rp.redeem(request, done)


def test_step_up_through_the_upstream_needs_a_new_upstream_login(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    connect(server, upstream, config={"mfa_amr": ["mfa"]})
    rp = make_rp()
    first = _sign_in(fed_browser, rp, auth_age=600)
    assert server.clock.now() - first.id_claims["auth_time"] >= 600

    request = rp.authorization_request(max_age="300")
    reauth = fed_browser.open(request.url)
    assert isinstance(reauth, Page) and reauth.title.startswith("Confirm it"), reauth
    at_upstream = _continue_with(fed_browser, reauth)
    # The upstream was told prompt=login and max_age=0, and it asks again.
    assert isinstance(at_upstream, Page) and "prompt: login" in at_upstream.html
    done = _upstream_login(fed_browser, at_upstream, "alice-sub", amr="pwd,otp,mfa")
    assert isinstance(done, Callback), events("authentication.failed")
    tokens = rp.redeem(request, done)
    assert tokens.id_claims["sid"] == first.id_claims["sid"]
    assert server.clock.now() - tokens.id_claims["auth_time"] <= 5
    assert "mfa" in tokens.id_claims["amr"] and "fed" in tokens.id_claims["amr"], events(
        "authentication.reauthenticated"
    )
    assert tokens.id_claims["acr"] == ACR_MFA
    event = events("authentication.reauthenticated")[-1]
    upstream_data = event.data["upstream"]
    assert upstream_data["connection"] == "corp"
    assert upstream_data["subject"] == "alice-sub"
    assert upstream_data["amr"] == ["pwd", "otp", "mfa"]
    assert upstream_data["acr"] == "urn:peer:pwd"
    assert server.clock.now() - upstream_data["auth_time"] <= 5


def test_an_upstream_that_ignores_prompt_login_is_not_a_fresh_proof(
    server: RunningServer,
    lazy_upstream: OidcPeer,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    connect(server, lazy_upstream)
    rp = make_rp()
    _sign_in(fed_browser, rp, auth_age=600)

    request = rp.authorization_request(max_age="300")
    reauth = fed_browser.open(request.url)
    # The upstream keeps its 10-minute-old session and answers without asking anything.
    refused = _continue_with(fed_browser, reauth)
    assert isinstance(refused, Page) and refused.status == 401, refused
    assert "did not ask you to sign in again" in refused.html
    assert refused.title.startswith("Confirm it")
    failed = events("authentication.failed")[-1]
    assert failed.data["reason"] == "upstream_not_fresh"
    assert failed.data["method"] == "fed:corp"
    assert failed.data["reauthentication"] is True
    assert not events("authentication.reauthenticated")


def test_a_callback_for_another_state_or_a_replayed_one_finds_nothing(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    connect(server, upstream)
    rp = make_rp()
    seen: list[str] = []

    def record(url: str) -> str:
        if "/callback?" in url:
            seen.append(url)
        return url

    fed_browser.on_redirect = record
    request = rp.authorization_request()
    at_upstream = _continue_with(fed_browser, fed_browser.open(request.url))
    assert isinstance(_upstream_login(fed_browser, at_upstream, "alice-sub"), Callback)
    fed_browser.on_redirect = None
    (callback,) = seen
    replayed = fed_browser.open(callback)
    assert isinstance(replayed, Page) and replayed.status == 400
    assert "expired" in replayed.title
    forged = fed_browser.open(replace_param(callback, "state", "forged-state"))
    assert isinstance(forged, Page) and forged.status == 400
    reasons = [e.data["reason"] for e in events("authentication.failed")]
    assert reasons == ["unknown_state", "unknown_state"]


def test_the_callback_in_another_browser_finds_nothing(
    server: RunningServer, upstream: OidcPeer, make_rp: RPFactory, fed_browser: FedBrowser
) -> None:
    """Login CSRF (RFC 6749 §10.12): the flow is bound to the browser that started it."""
    connect(server, upstream)
    rp = make_rp()
    stolen: list[str] = []

    def steal(url: str) -> str:
        if "/callback?" in url:
            stolen.append(url)
            return "http://127.0.0.1:9/cb?stolen"
        return url

    fed_browser.on_redirect = steal
    request = rp.authorization_request()
    at_upstream = _continue_with(fed_browser, fed_browser.open(request.url))
    _upstream_login(fed_browser, at_upstream, "alice-sub")
    other = FedBrowser.make(REDIRECT_URI)
    try:
        landing = other.open(stolen[0])
        assert isinstance(landing, Page) and landing.status == 400
    finally:
        other.close()


def test_a_signed_in_user_links_an_upstream_account_from_the_account_page(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    make_user: UserFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    ada = make_user("ada@example.com")
    connect(server, upstream, domains=[], jit=False)
    rp = make_rp()
    request = rp.authorization_request()
    login = fed_browser.open(request.url)
    assert isinstance(login, Page)
    signed_in = fed_browser.submit(
        login, login.form("/password"), email="ada@example.com", password=DEMO_PASSWORD
    )
    assert isinstance(signed_in, Callback)

    confirm = fed_browser.open(f"{server.url}/account/federation/corp/link")
    assert isinstance(confirm, Page) and confirm.title.startswith("Link your Corp SSO account"), (
        confirm
    )
    at_upstream = fed_browser.submit(confirm, confirm.form("/account/federation/corp/link"))
    assert isinstance(at_upstream, Page) and "prompt: login" in at_upstream.html
    account = _upstream_login(fed_browser, at_upstream, "ada-upstream")
    assert isinstance(account, Page) and account.url.endswith("/account"), account
    added = events("credential.added")[-1]
    assert added.user_id == ada and added.data["linked_by"] == "account_page"

    # From now on that upstream account signs Ada in, in any browser.
    other = FedBrowser.make(REDIRECT_URI)
    try:
        tokens = _sign_in(other, rp, "ada-upstream")
    finally:
        other.close()
    assert tokens.id_claims["sub"] == ada
