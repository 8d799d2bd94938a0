"""oidcc-server and the discovery checks: the happy path through real HTTP, verified as an RP would
(OIDC Core §3.1, RFC 7636, RFC 9207, OIDC Discovery §3, RFC 9068)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.conftest import ADA, RPFactory
from tests.protocol.rp import Browser, Callback, Page, RelyingParty, jose_header, sign_in


def test_code_flow_with_pkce_and_nonce_issues_a_complete_id_token(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    state = "a b&c=d#e/é?+%20"  # comes back exactly, whatever it contains
    request = rp.authorization_request(scope="openid email", state=state)
    callback = browser.authorize(request.url, ADA, DEMO_PASSWORD)
    assert browser.shown == ["login"]
    params = rp.check_response(request, callback)  # RFC 9207 iss and the state we sent
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == state

    tokens = rp.redeem(request, callback)
    c = tokens.id_claims
    assert c["iss"] == server.url
    assert c["aud"] == rp.client_id and c["azp"] == rp.client_id
    assert c["sub"] == ada
    assert c["nonce"] == request.nonce
    assert c["iat"] < c["exp"]
    assert isinstance(c["auth_time"], int) and c["auth_time"] <= c["iat"]
    assert isinstance(c["sid"], str) and c["sid"]
    assert c["acr"] == "urn:freshid:acr:1fa"
    assert c["amr"] == ["pwd"]
    assert tokens.raw["token_type"].lower() == "bearer"
    assert tokens.raw["expires_in"] > 0

    info = rp.userinfo(tokens.access_token)
    assert info.status_code == 200
    assert info.json()["sub"] == c["sub"]
    assert info.json()["email"] == ADA
    # oidcc-userinfo-post-header: POST with the bearer header answers the same.
    posted = rp.oauth.request(
        "POST",
        rp.metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens.access_token}"},
        withhold_token=True,
    )
    assert posted.status_code == 200 and posted.json() == info.json()


def test_basic_plan_request_variants_all_succeed(
    server: RunningServer, ada: str, rp: RelyingParty, make_rp: RPFactory, browser: Browser
) -> None:
    # oidcc-login-hint, -display-page/-popup, -ui-locales, -claims-locales, -claims-essential,
    # -ensure-request-with-unknown-parameter-succeeds, -ensure-request-with-acr-values-succeeds.
    request = rp.authorization_request(
        login_hint=ADA,
        display="popup",
        ui_locales="fr-CA fr en",
        claims_locales="fr en",
        acr_values="urn:freshid:acr:1fa",
        claims=json.dumps({"userinfo": {"email": {"essential": True}}}),
        unknown_extension="42",
    )
    login = browser.open(request.url)
    assert isinstance(login, Page) and login.kind == "login"
    assert login.form("/password").fields["email"] == ADA
    callback = browser.submit(login.form("/password"), password=DEMO_PASSWORD)
    assert isinstance(callback, Callback)
    assert rp.redeem(request, callback).id_claims["acr"] == "urn:freshid:acr:1fa"

    # oidcc-ensure-request-without-nonce-succeeds-for-code-flow: and no nonce is made up.
    request = rp.authorization_request(nonce=False)
    tokens = rp.redeem(request, browser.authorize(request.url, ADA, DEMO_PASSWORD))
    assert "nonce" not in tokens.id_claims

    # oidcc-ensure-post-request-succeeds: the same request as a form POST.
    request = rp.authorization_request()
    callback = browser.open_by_post(request.url)
    assert isinstance(callback, Callback)
    assert rp.redeem(request, callback).id_claims["nonce"] == request.nonce

    # oidcc-server-client-secret-post: the other advertised client authentication method.
    post = make_rp(auth_method="client_secret_post")
    assert "client_secret_post" in post.metadata["token_endpoint_auth_methods_supported"]
    tokens = sign_in(post, browser, ADA, DEMO_PASSWORD)
    assert tokens.id_claims["aud"] == post.client_id
    assert post.refresh(tokens.refresh_token).id_claims["sub"] == ada
    assert browser.shown == ["login"]  # everything after the first sign-in was silent


def test_scopes_decide_which_claims_are_released_whatever_their_order(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    # oidcc-scope-email, oidcc-ensure-other-scope-order-succeeds; unsupported scopes (profile,
    # phone, address) are ignored rather than refused, and not granted.
    for scope, email in (
        ("openid", False),
        ("email openid", True),
        ("openid profile phone address", False),
        ("profile email address phone openid", True),
    ):
        tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD, scope=scope)
        granted = set(tokens.raw["scope"].split())
        assert "openid" in granted and granted <= {"openid", "email"}, scope
        info = rp.userinfo(tokens.access_token).json()
        assert info["sub"] == ada
        assert ("email" in info) is email, scope
        assert ("email" in tokens.id_claims) is email, scope
        if email:
            assert info["email"] == tokens.id_claims["email"] == ADA


def test_userinfo_refuses_requests_without_a_valid_bearer_token(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    endpoint = rp.metadata["userinfo_endpoint"]
    assert browser.http.get(endpoint).status_code == 401
    # An ID token is not an access token, even though both are signed by the provider.
    r = browser.http.get(endpoint, headers={"Authorization": f"Bearer {tokens.id_token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_discovery_advertises_exactly_what_is_implemented(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    m = rp.metadata
    assert m["issuer"] == server.url
    assert m["response_types_supported"] == ["code"]
    assert m["code_challenge_methods_supported"] == ["S256"]
    assert set(m["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert "implicit" not in m["grant_types_supported"]
    assert set(m.get("response_modes_supported", ["query"])) <= {"query"}
    assert m["id_token_signing_alg_values_supported"] == ["ES256"]
    assert "openid" in m["scopes_supported"]
    assert m["authorization_response_iss_parameter_supported"] is True
    assert set(m["prompt_values_supported"]) == {"none", "login"}
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ):
        assert m[name].startswith(server.url + "/"), name

    # What is not advertised is refused: the implicit and hybrid response types...
    for response_type in ("token", "id_token", "code id_token"):
        request = rp.authorization_request(response_type=response_type)
        landing = browser.open(request.url)
        assert isinstance(landing, Callback)
        assert landing.params["error"] == "unsupported_response_type"
    # ...grant types other than the two advertised...
    for grant_type in ("password", "client_credentials", "implicit"):
        r = rp.token_request({"grant_type": grant_type})
        assert r.status_code == 400
        assert r.json()["error"] == "unsupported_grant_type"
    # ...request objects and dynamic registration parameters, and a missing response_type...
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://rp.example/request.jwt"}, "request_uri_not_supported"),
        ({"registration": "{}"}, "registration_not_supported"),
        ({"response_type": ""}, "invalid_request"),
        ({"scope": "email"}, "invalid_scope"),
    ]
    for params, error in refusals:
        landing = browser.open(rp.authorization_request(**params).url)
        assert isinstance(landing, Callback), params
        assert landing.params["error"] == error, params
    # ...and prompt values other than none and login.
    landing = browser.open(rp.authorization_request(prompt="consent").url)
    assert isinstance(landing, Callback)
    assert landing.params["error"] == "invalid_request"
    assert browser.shown == []


def test_tokens_are_es256_jwts_signed_with_a_kid_the_jwks_publishes(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    r = browser.http.get(rp.metadata["jwks_uri"])
    assert r.status_code == 200
    keys = r.json()["keys"]
    published = {k["kid"] for k in keys}
    for token, typ in ((tokens.id_token, "jwt"), (tokens.access_token, "at+jwt")):
        header = jose_header(token)
        assert header["alg"] == "ES256"
        assert header["kid"] in published
        assert header["typ"].lower() == typ  # RFC 9068 §2.1 for the access token
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        assert "d" not in key  # never the private part
    # The JWT access token states the same proof as the ID token (RFC 9068 §2.2).
    claims = rp.introspect(tokens.access_token)
    assert claims["active"] is True and claims["client_id"] == rp.client_id
    for name in ("sub", "auth_time", "acr", "amr", "sid"):
        assert claims[name] == tokens.id_claims[name]
