"""Freshness through the front channel: max_age, prompt, id_token_hint, client default_max_age and
essential acr (OIDC Core §3.1.2.1, §3.1.2.6, §5.5.1.1; OIDC Registration ``default_max_age``).

A proof is made old by signing in with the provider's clock 300 s in the past; every request after
that runs at the real time, so tokens carry current times while the session's auth_time is old.
"""

from __future__ import annotations

import json

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from freshid.clock import FrozenClock
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.conftest import ADA, GRACE, BrowserFactory, RPFactory, UserFactory
from tests.protocol.rp import (
    Browser,
    Callback,
    RelyingParty,
    Tokens,
    b64url_json,
    jose_header,
    shifted,
    sign_in,
)

AGE = 300


def _old_sign_in(server: RunningServer, rp: RelyingParty, browser: Browser) -> Tokens:
    with shifted(server.clock, -AGE):
        return sign_in(rp, browser, ADA, DEMO_PASSWORD)


def _silent_request(browser: Browser, url: str) -> Callback:
    """Open ``url``; the provider must answer with a redirect to the client and no page at all."""
    before = list(browser.shown)
    landing = browser.open(url)
    assert isinstance(landing, Callback)
    assert browser.shown == before
    return landing


def test_max_age_1_requires_reauthentication_and_moves_auth_time(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    first = _old_sign_in(server, rp, browser)
    second = sign_in(rp, browser, ADA, DEMO_PASSWORD, max_age="1")
    assert browser.shown == ["login", "reauth"]
    assert second.id_claims["auth_time"] > first.id_claims["auth_time"]
    assert second.id_claims["sub"] == first.id_claims["sub"]


def test_max_age_10000_accepts_the_existing_proof_without_ui(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    first = _old_sign_in(server, rp, browser)
    request = rp.authorization_request(max_age="10000")
    callback = browser.authorize(request.url, ADA, DEMO_PASSWORD)
    assert browser.shown == ["login"]  # only the first sign-in
    second = rp.redeem(request, callback)
    assert second.id_claims["auth_time"] == first.id_claims["auth_time"]
    assert second.id_claims["sid"] == first.id_claims["sid"]


def test_prompt_login_forces_reauthentication_in_the_same_session(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    first = _old_sign_in(server, rp, browser)
    second = sign_in(rp, browser, ADA, DEMO_PASSWORD, prompt="login")
    assert browser.shown == ["login", "reauth"]
    assert second.id_claims["sid"] == first.id_claims["sid"]
    assert second.id_claims["auth_time"] > first.id_claims["auth_time"]


def test_prompt_none_without_a_session_returns_login_required_to_the_client(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    request = rp.authorization_request(prompt="none")
    landing = browser.open(request.url)
    assert isinstance(landing, Callback) and browser.shown == []
    params = rp.check_response(request, landing)  # state and iss come back with the error
    assert params["error"] == "login_required"
    assert "code" not in params


def test_prompt_none_with_a_session_issues_a_code_without_ui(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    first = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    request = rp.authorization_request(prompt="none")
    landing = _silent_request(browser, request.url)
    second = rp.redeem(request, landing)
    assert second.id_claims["sid"] == first.id_claims["sid"]
    assert second.id_claims["auth_time"] == first.id_claims["auth_time"]
    assert second.id_claims["nonce"] == request.nonce


def test_prompt_none_with_a_proof_older_than_max_age_returns_login_required(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    _old_sign_in(server, rp, browser)
    request = rp.authorization_request(prompt="none", max_age="60")
    params = rp.check_response(request, _silent_request(browser, request.url))
    assert params["error"] == "login_required"
    assert "code" not in params


def test_id_token_hint_for_the_signed_in_user_with_prompt_none_issues_a_code(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    first = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    request = rp.authorization_request(prompt="none", id_token_hint=first.id_token)
    second = rp.redeem(request, _silent_request(browser, request.url))
    assert second.id_claims["sub"] == first.id_claims["sub"]


def test_id_token_hint_for_another_subject_is_login_required_under_prompt_none(
    server: RunningServer,
    ada: str,
    rp: RelyingParty,
    browser: Browser,
    make_browser: BrowserFactory,
    make_user: UserFactory,
) -> None:
    make_user(GRACE)
    graces = sign_in(rp, make_browser(), GRACE, DEMO_PASSWORD)
    adas = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    request = rp.authorization_request(prompt="none", id_token_hint=graces.id_token)
    params = rp.check_response(request, _silent_request(browser, request.url))
    assert params["error"] == "login_required"
    assert "code" not in params
    # Without prompt=none the user is asked to sign in from scratch, not to confirm as Ada.
    landing = browser.open(rp.authorization_request(id_token_hint=graces.id_token).url)
    assert not isinstance(landing, Callback) and landing.kind == "login"
    assert adas.id_claims["sub"] != graces.id_claims["sub"]


def test_forged_or_tampered_id_token_hint_is_invalid_request_not_a_code(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    real = sign_in(rp, browser, ADA, DEMO_PASSWORD).id_token
    header, payload, signature = real.split(".")
    claims = jwt.decode(real, KeySet.import_key_set(rp.jwks())).claims  # type: ignore[arg-type]
    tampered_claims = b64url_json({**claims, "sub": "someone-else"})
    hints = {
        "bad signature": f"{header}.{payload}.{signature[::-1]}",
        "tampered payload": f"{header}.{tampered_claims}.{signature}",
        "signed by another key with our kid": jwt.encode(
            {"alg": "ES256", "kid": jose_header(real)["kid"], "typ": "JWT"},
            claims,
            ECKey.generate_key("P-256"),
        ),
        "alg none": f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "not a JWT": "not-a-jwt",
    }
    for name, hint in hints.items():
        request = rp.authorization_request(prompt="none", id_token_hint=hint)
        params = rp.check_response(request, _silent_request(browser, request.url))
        assert params["error"] == "invalid_request", name
        assert "code" not in params, name


def test_client_default_max_age_applies_when_the_request_has_none(
    server: RunningServer, ada: str, make_rp: RPFactory, browser: Browser
) -> None:
    rp = make_rp(default_max_age=60)
    first = _old_sign_in(server, rp, browser)
    # An explicit max_age overrides the client's default (OIDC Registration §2)...
    kept = sign_in(rp, browser, ADA, DEMO_PASSWORD, max_age="10000")
    assert browser.shown == ["login"]
    assert kept.id_claims["auth_time"] == first.id_claims["auth_time"]
    # ...and without one, the default makes a 300 s old proof too old.
    silent = rp.authorization_request(prompt="none")
    assert rp.check_response(silent, _silent_request(browser, silent.url))["error"] == (
        "login_required"
    )
    fresh = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    assert browser.shown == ["login", "reauth"]
    assert fresh.id_claims["auth_time"] > first.id_claims["auth_time"]


def test_essential_acr_that_cannot_be_met_is_an_error_never_a_downgrade(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    claims = json.dumps(
        {"id_token": {"acr": {"essential": True, "values": ["urn:freshid:acr:phr"]}}}
    )
    # Signing in with a password cannot reach a phishing-resistant acr.
    request = rp.authorization_request(claims=claims)
    params = rp.check_response(request, browser.authorize(request.url, ADA, DEMO_PASSWORD))
    assert params["error"] == "unmet_authentication_requirements"
    assert "code" not in params
    # Signed in already: the answer is immediate, with no page.
    request = rp.authorization_request(claims=claims)
    params = rp.check_response(request, _silent_request(browser, request.url))
    assert params["error"] == "unmet_authentication_requirements"
    # An essential acr the session does meet is granted and stated.
    met = json.dumps({"id_token": {"acr": {"essential": True, "value": "urn:freshid:acr:1fa"}}})
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD, claims=met)
    assert tokens.id_claims["acr"] == "urn:freshid:acr:1fa"


def test_prompt_login_in_the_same_second_as_the_previous_sign_in_still_reauthenticates(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    frozen = FrozenClock(server.clock.now())
    original, server.provider.clock = server.provider.clock, frozen
    try:
        first = sign_in(rp, browser, ADA, DEMO_PASSWORD)
        # The relying party asks for a new sign-in right away, within the same second.
        second = sign_in(rp, browser, ADA, DEMO_PASSWORD, prompt="login")
    finally:
        server.provider.clock = original
    assert browser.shown == ["login", "reauth"]
    assert second.id_claims["auth_time"] == first.id_claims["auth_time"]  # same frozen second
