"""The authorization code: single use (oidcc-codereuse), bound to PKCE S256 (RFC 7636, RFC 9700
§2.1.1), and only ever delivered to a registered redirect URI (oidcc-ensure-registered-redirect-uri,
RFC 6749 §4.1.2.1)."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.conftest import ADA, REDIRECT_URI, EventReader, RPFactory
from tests.protocol.rp import Browser, Callback, OAuthError, RelyingParty


def test_second_redemption_fails_and_revokes_what_the_first_issued(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser, events: EventReader
) -> None:
    request = rp.authorization_request()
    callback = browser.authorize(request.url, ADA, DEMO_PASSWORD)
    first = rp.redeem(request, callback)
    assert rp.userinfo(first.access_token).status_code == 200

    with pytest.raises(OAuthError) as replay:
        rp.redeem(request, callback)
    assert replay.value.error == "invalid_grant"

    assert rp.userinfo(first.access_token).status_code == 401
    assert rp.introspect(first.access_token) == {"active": False}
    assert rp.introspect(first.refresh_token) == {"active": False}
    with pytest.raises(OAuthError) as refresh:
        rp.refresh(first.refresh_token)
    assert refresh.value.error == "invalid_grant"

    [event] = events("authorization_code.reuse_detected")
    assert event.client_id == rp.client_id
    assert event.user_id == ada
    assert event.session_id == first.id_claims["sid"]


def _error_redirect(rp: RelyingParty, browser: Browser, **params: Any) -> dict[str, str]:
    request = rp.authorization_request(pkce=False, **params)
    landing = browser.open(request.url)
    assert isinstance(landing, Callback), "expected an error redirect"
    assert browser.shown == []
    response = rp.check_response(request, landing)
    assert "code" not in response
    return response


def test_public_client_without_code_challenge_gets_invalid_request(
    server: RunningServer, make_rp: RPFactory, browser: Browser
) -> None:
    public = make_rp(public=True)
    assert _error_redirect(public, browser)["error"] == "invalid_request"


def test_plain_code_challenge_method_is_refused(
    server: RunningServer, rp: RelyingParty, make_rp: RPFactory, browser: Browser
) -> None:
    challenge = secrets.token_urlsafe(48)
    for client in (rp, make_rp(public=True)):
        plain = _error_redirect(
            client, browser, code_challenge=challenge, code_challenge_method="plain"
        )
        assert plain["error"] == "invalid_request"
        # A challenge without a method means plain (RFC 7636 §4.3): refused as well.
        assert _error_redirect(client, browser, code_challenge=challenge)["error"] == (
            "invalid_request"
        )


def test_wrong_code_verifier_is_invalid_grant(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    request = rp.authorization_request()
    callback = browser.authorize(request.url, ADA, DEMO_PASSWORD)
    with pytest.raises(OAuthError) as exc:
        rp.redeem(request, callback, code_verifier=secrets.token_urlsafe(48))
    assert exc.value.error == "invalid_grant"


def test_code_verifier_without_a_challenge_is_invalid_grant(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    # A confidential client may skip PKCE, but a verifier the request never committed to means
    # the challenge was stripped on the way (a downgrade).
    request = rp.authorization_request(pkce=False)
    callback = browser.authorize(request.url, ADA, DEMO_PASSWORD)
    with pytest.raises(OAuthError) as exc:
        rp.redeem(request, callback, code_verifier=secrets.token_urlsafe(48))
    assert exc.value.error == "invalid_grant"


def test_missing_code_verifier_when_a_challenge_was_sent_is_invalid_grant(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    request = rp.authorization_request()
    callback = browser.authorize(request.url, ADA, DEMO_PASSWORD)
    with pytest.raises(OAuthError) as exc:
        rp.redeem(dataclasses.replace(request, verifier=None), callback)
    assert exc.value.error == "invalid_grant"


def _assert_error_page(response: httpx.Response) -> None:
    assert response.status_code == 400, response.status_code
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def _authorize_params(client_id: str, redirect_uri: str) -> dict[str, str]:
    return {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid",
        "state": "s",
        "nonce": "n",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }


def test_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    for uri in (
        "https://attacker.example/cb",
        "http://127.0.0.1:9/cb/",
        "http://127.0.0.1:9/CB",
        "http://127.0.0.1:10/cb",
        "http://localhost:9/cb",
    ):
        params = _authorize_params(rp.client_id, uri)
        _assert_error_page(browser.http.get(f"{server.url}/authorize", params=params))
        _assert_error_page(browser.http.post(f"{server.url}/authorize", data=params))
    # Signed in or not makes no difference, and prompt=none does not turn it into a redirect.
    browser.authorize(rp.authorization_request().url, ADA, DEMO_PASSWORD)
    params = {**_authorize_params(rp.client_id, "https://attacker.example/cb"), "prompt": "none"}
    _assert_error_page(browser.http.get(f"{server.url}/authorize", params=params))


def test_redirect_uri_with_an_added_query_parameter_gets_an_error_page(
    server: RunningServer, ada: str, rp: RelyingParty, make_rp: RPFactory, browser: Browser
) -> None:
    for uri in (f"{REDIRECT_URI}?extra=1", f"{REDIRECT_URI}?", f"{REDIRECT_URI}#frag"):
        params = _authorize_params(rp.client_id, uri)
        _assert_error_page(browser.http.get(f"{server.url}/authorize", params=params))
    # A registered URI with its own query matches only exactly, and keeps its query.
    tenant = make_rp("http://127.0.0.1:9/cb?tenant=1")
    for uri in (
        "http://127.0.0.1:9/cb?tenant=1&extra=1",
        "http://127.0.0.1:9/cb?tenant=2",
        "http://127.0.0.1:9/cb",
    ):
        params = _authorize_params(tenant.client_id, uri)
        _assert_error_page(browser.http.get(f"{server.url}/authorize", params=params))
    request = tenant.authorization_request()
    callback = browser.authorize(request.url, ADA, DEMO_PASSWORD)
    assert tenant.check_response(request, callback)["tenant"] == "1"
    assert tenant.redeem(request, callback).id_claims["sub"] == ada


def test_unknown_client_or_missing_client_id_or_redirect_uri_gets_an_error_page(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    params = _authorize_params("no-such-client", REDIRECT_URI)
    _assert_error_page(browser.http.get(f"{server.url}/authorize", params=params))
    del params["client_id"]
    _assert_error_page(browser.http.get(f"{server.url}/authorize?{urlencode(params)}"))
    # oidcc-ensure-redirect-uri-in-authorization-request: required even with one registered URI.
    params = _authorize_params(rp.client_id, REDIRECT_URI)
    del params["redirect_uri"]
    _assert_error_page(browser.http.get(f"{server.url}/authorize?{urlencode(params)}"))
