"""JWT attacks against every place FreshID accepts a JWT (RFC 8725 §2-§3): ``id_token_hint`` at
the authorization and end-session endpoints, access tokens at UserInfo and introspection.

Every forgery is refused with the endpoint's own error — ``invalid_request`` at the client's
redirect URI for a hint, FreshID's error page at logout, 401 ``invalid_token`` at UserInfo,
``{"active": false}`` at introspection — and never with a 500, a code, a logout or claims.
(freshid_guard, the other verifier, has its own suite in tests/guard.)
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx

from freshid.tokens.keys import SigningKey
from tests.abuse.conftest import POST_LOGOUT_URI, SignedIn
from tests.abuse.forge import Forgery, claim_forgeries, forgeries, server_signed
from tests.conftest import RunningServer
from tests.protocol.rp import Browser, Callback, RelyingParty, shifted

DESCRIPTION = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]*$")  # RFC 6749 §5.2


def _key(server: RunningServer) -> SigningKey:
    return server.provider.keyring(refresh=True).active


def _hint_at_authorize(rp: RelyingParty, browser: Browser, hint: str) -> httpx.Response:
    """A silent request by the signed-in user's browser naming ``hint`` as the ID token hint."""
    request = rp.authorization_request(prompt="none", id_token_hint=hint)
    return browser.http.get(request.url)


def _assert_hint_refused(rp: RelyingParty, response: httpx.Response, name: str) -> None:
    assert response.status_code == 303, (name, response.status_code)
    callback = Callback(response.headers["location"])
    assert callback.base == rp.redirect_uri, name
    assert callback.params.get("error") == "invalid_request", (name, callback.params)
    assert "code" not in callback.params, name
    assert DESCRIPTION.match(callback.params.get("error_description", "")), name


def _assert_logout_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 400, (name, response.status_code)
    assert response.headers["content-type"].startswith("text/html"), name
    assert "location" not in response.headers, name
    assert 'action="/logout/confirm"' not in response.text, name


def _assert_bearer_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 401, (name, response.status_code, response.text)
    assert response.json()["error"] == "invalid_token", name
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge, name
    assert DESCRIPTION.match(response.json().get("error_description", "")), name


def _introspect(server: RunningServer, rp: RelyingParty, token: str) -> httpx.Response:
    response: httpx.Response = rp.oauth.request(
        "POST",
        f"{server.url}/introspect",
        data={"token": token},
        withhold_token=True,
        auth=rp.oauth.client_auth("client_secret_basic"),
    )
    return response


def _userinfo(server: RunningServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/userinfo", headers={"Authorization": f"Bearer {token}"})


def test_forged_id_token_hints_are_refused_at_authorize_and_logout(
    server: RunningServer, rp: RelyingParty, browser: Browser, signed_in: SignedIn
) -> None:
    key = _key(server)
    genuine = signed_in.tokens.id_token
    attacks: list[Forgery] = [
        *forgeries(genuine, key),
        *claim_forgeries(genuine, key),
        Forgery("an access token as the hint", signed_in.tokens.access_token),
    ]
    # The genuine hint works: the refusals below are about the forgery, not the request.
    ok = _hint_at_authorize(rp, browser, genuine)
    assert "code" in Callback(ok.headers["location"]).params
    for attack in attacks:
        _assert_hint_refused(rp, _hint_at_authorize(rp, browser, attack.token), attack.name)
        query = urlencode(
            {"id_token_hint": attack.token, "post_logout_redirect_uri": POST_LOGOUT_URI}
        )
        _assert_logout_refused(browser.http.get(f"{server.url}/logout?{query}"), attack.name)

    # The confirming POST re-checks the hint: a forged one signs nobody out and goes nowhere.
    page = browser.http.get(f"{server.url}/logout")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    for attack in attacks[:12]:
        response = browser.http.post(
            f"{server.url}/logout/confirm",
            data={
                "csrf_token": csrf.group(1),
                "confirm": "yes",
                "id_token_hint": attack.token,
                "post_logout_redirect_uri": POST_LOGOUT_URI,
            },
        )
        _assert_logout_refused(response, attack.name)
    assert "code" in Callback(_hint_at_authorize(rp, browser, genuine).headers["location"]).params


def test_an_expired_id_token_hint_is_still_accepted_as_oidc_requires(
    server: RunningServer, rp: RelyingParty, browser: Browser, signed_in: SignedIn
) -> None:
    # OIDC Core §3.1.2.1: the hint "SHOULD be present ... the OP need not be listed as an audience
    # ... and it MAY have expired". It must still be ours: signature and issuer hold.
    expired = server_signed(signed_in.tokens.id_token, _key(server), exp=server.clock.now() - 3600)
    response = _hint_at_authorize(rp, browser, expired)
    assert "code" in Callback(response.headers["location"]).params


def test_forged_access_tokens_are_refused_at_userinfo_and_introspection(
    server: RunningServer, rp: RelyingParty, signed_in: SignedIn
) -> None:
    key = _key(server)
    genuine = signed_in.tokens.access_token
    now = server.clock.now()
    attacks = [
        *forgeries(genuine, key),
        *claim_forgeries(genuine, key),
        Forgery("expired (our key, a live jti)", server_signed(genuine, key, exp=now - 1)),
        Forgery("an ID token as the access token", signed_in.tokens.id_token),
    ]
    # A refresh token is not a bearer token (introspection rightly reports it active).
    _assert_bearer_refused(_userinfo(server, signed_in.tokens.refresh_token), "refresh token")
    assert _userinfo(server, genuine).status_code == 200
    assert _introspect(server, rp, genuine).json()["active"] is True
    for attack in attacks:
        _assert_bearer_refused(_userinfo(server, attack.token), attack.name)
        response = _introspect(server, rp, attack.token)
        assert response.status_code == 200, (attack.name, response.status_code)
        assert response.json() == {"active": False}, attack.name
    # The genuine token is still good, then expires with the clock.
    assert _userinfo(server, genuine).status_code == 200
    with shifted(server.clock, server.settings.access_token_ttl + 1):
        _assert_bearer_refused(_userinfo(server, genuine), "expired by the clock")
        assert _introspect(server, rp, genuine).json() == {"active": False}


def test_malformed_authorization_headers_are_invalid_token_not_a_500(
    server: RunningServer,
) -> None:
    for header in (
        "Bearer",
        "Bearer a b c",
        "Basic dXNlcjpwYXNz",
        "bearer " + "A" * 20_000,
        "Bearer eyJ.eyJ.sig",
        "Bearer ....",
        "Bearer \t token",
        "Token abc",
    ):
        response = httpx.get(f"{server.url}/userinfo", headers={"Authorization": header})
        assert response.status_code in (400, 401, 431), (header[:30], response.status_code)
        if response.status_code == 401:
            _assert_bearer_refused(response, header[:30])
