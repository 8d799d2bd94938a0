"""Refusals that are about the rules, not the store: run on SQLite only (the storage paths they
share with sign-in and step-up run on both backends in test_oidc_upstream)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.federation.conftest import connect
from tests.federation.peers import FedBrowser, OidcPeer, replace_param
from tests.federation.test_oidc_upstream import _continue_with, _sign_in, _upstream_login
from tests.protocol.conftest import EventReader, RPFactory, UserFactory
from tests.protocol.rp import Callback, Page

pytestmark = pytest.mark.e2e


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/freshid.sqlite3"


@pytest.mark.parametrize(
    ("where", "param", "reason"),
    [
        ("/auth?", "nonce", "wrong_nonce"),
        ("/callback?", "iss", "issuer_mismatch"),
    ],
)
def test_a_tampered_answer_is_refused(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
    where: str,
    param: str,
    reason: str,
) -> None:
    connect(server, upstream)
    rp = make_rp()

    def tamper(url: str) -> str:
        return replace_param(url, param, "https://evil.example") if where in url else url

    fed_browser.on_redirect = tamper
    request = rp.authorization_request()
    at_upstream = _continue_with(fed_browser, fed_browser.open(request.url))
    refused = _upstream_login(fed_browser, at_upstream, "alice-sub")
    assert isinstance(refused, Page) and refused.status == 401, refused
    assert events("authentication.failed")[-1].data["reason"] == reason
    assert not events("user.created")


def test_an_unverified_upstream_email_creates_nobody(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    connect(server, upstream)
    rp = make_rp()
    request = rp.authorization_request()
    at_upstream = _continue_with(fed_browser, fed_browser.open(request.url))
    refused = _upstream_login(fed_browser, at_upstream, "mallory-sub")
    assert isinstance(refused, Page) and refused.status == 401
    assert events("authentication.failed")[-1].data["reason"] == "email_not_verified"
    assert not events("user.created")


@pytest.mark.parametrize("link_verified_email", [False, True])
def test_an_existing_account_is_linked_only_when_the_connection_allows_it(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    make_user: UserFactory,
    fed_browser: FedBrowser,
    events: EventReader,
    link_verified_email: bool,
) -> None:
    ada = make_user("ada@example.com")
    connect(server, upstream, domains=[], link_verified_email=link_verified_email)
    rp = make_rp()
    request = rp.authorization_request()
    at_upstream = _continue_with(fed_browser, fed_browser.open(request.url))
    landing = _upstream_login(fed_browser, at_upstream, "ada-upstream")
    if not link_verified_email:
        assert isinstance(landing, Page) and landing.status == 401
        assert "link" in landing.html
        assert events("authentication.failed")[-1].data["reason"] == "link_required"
        return
    assert isinstance(landing, Callback)
    assert rp.redeem(request, landing).id_claims["sub"] == ada
    added = events("credential.added")[-1]
    assert added.user_id == ada and added.data["linked_by"] == "verified_email"


def test_single_sign_on_routes_by_email_domain(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
) -> None:
    connect(server, upstream)
    rp = make_rp()
    request = rp.authorization_request()
    login = fed_browser.open(request.url)
    assert isinstance(login, Page)
    unknown = fed_browser.submit(login, login.form("/sso"), email="bob@elsewhere.example")
    assert isinstance(unknown, Page) and unknown.status == 400
    assert "not set up" in unknown.html
    at_upstream = fed_browser.submit(login, login.form("/sso"), email="Alice@Corp.Example")
    assert isinstance(at_upstream, Page) and at_upstream.title == "Upstream sign-in"
    done = _upstream_login(fed_browser, at_upstream, "alice-sub")
    assert isinstance(done, Callback)


def test_a_step_up_as_another_upstream_account_is_refused(
    server: RunningServer,
    upstream: OidcPeer,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    connect(server, upstream, domains=[])
    rp = make_rp()
    _sign_in(fed_browser, rp)
    # Signed out at the upstream (its cookies gone), the user signs in there as someone else.
    for cookie in list(fed_browser.http.cookies.jar):
        if not cookie.name.startswith("freshid_"):
            fed_browser.http.cookies.delete(cookie.name)
    request = rp.authorization_request(prompt="login")
    at_upstream = _continue_with(fed_browser, fed_browser.open(request.url))
    refused = _upstream_login(fed_browser, at_upstream, "ada-upstream")
    assert isinstance(refused, Page) and refused.status == 401
    assert events("authentication.failed")[-1].data["reason"] == "upstream_subject_mismatch"
    assert not events("user.created")[1:]
