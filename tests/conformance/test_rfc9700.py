"""RFC 9700 (OAuth 2.0 Security Best Current Practice) checks, black-box, with openid-client as
the relying party."""

from __future__ import annotations

import httpx
import pytest

from tests.conformance.conftest import REDIRECT_URI
from tests.conformance.openid_client import CertifiedRP, Refused
from tests.conformance.test_basic_plan import User, error_page, silent, with_param
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.rp import Browser, Callback


def test_no_implicit_or_hybrid_flow(
    server: RunningServer, rp: CertifiedRP, browser: Browser
) -> None:
    """RFC 9700 §2.1.2 no implicit: discovery offers `response_types_supported` = [`code`] and no
    `implicit` grant; `token`, `id_token`, `id_token token`, `code token`, `code id_token` are each
    `unsupported_response_type` at the client, with no token in the URL or fragment;
    `response_mode=fragment` is refused; the password and client-credentials grants are
    `unsupported_grant_type`"""
    m = rp.discover()
    assert m["response_types_supported"] == ["code"]
    assert "implicit" not in m["grant_types_supported"]
    assert "password" not in m["grant_types_supported"]
    for response_type in ("token", "id_token", "id_token token", "code token", "code id_token"):
        callback = silent(browser, rp.authorization_url(response_type=response_type).url)
        assert "#" not in callback.url
        assert callback.params["error"] == "unsupported_response_type", response_type
        assert not {"code", "access_token", "id_token"} & callback.params.keys()
    callback = silent(browser, rp.authorization_url(response_mode="fragment").url)
    assert "#" not in callback.url and callback.params["error"] == "invalid_request"
    assert rp.client_secret is not None
    for grant_type in ("password", "client_credentials", "implicit"):
        r = httpx.post(
            m["token_endpoint"],
            data={"grant_type": grant_type, "username": "u", "password": "p"},
            auth=(rp.client_id, rp.client_secret),
        )
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


VARIANTS = (
    REDIRECT_URI + "/",
    REDIRECT_URI + "/extra",
    REDIRECT_URI.replace("/cb", "/CB"),
    REDIRECT_URI.replace("127.0.0.1", "localhost"),
    REDIRECT_URI.replace(":9", ":90"),
    REDIRECT_URI.replace(":9", ""),
    REDIRECT_URI.replace("http:", "https:"),
    REDIRECT_URI + "#frag",
    REDIRECT_URI + "?",
    REDIRECT_URI.replace("http://", "http://user@"),
    REDIRECT_URI.replace("/cb", "/%63b"),
    REDIRECT_URI.replace("/cb", "/./cb"),
    " " + REDIRECT_URI,
)


def test_exact_redirect_uri_matching(rp: CertifiedRP, browser: Browser) -> None:
    """RFC 9700 §4.1.3 exact redirect URI matching: the registered URI works; each near miss
    (trailing slash, added path, case, `localhost` for `127.0.0.1`, other or default port, https,
    fragment, empty query, userinfo, percent-encoding, dot segment, leading space) gets the error
    page and never a redirect"""
    assert isinstance(silent(browser, rp.authorization_url(prompt="none").url), Callback)
    for variant in VARIANTS:
        error_page(browser, rp.authorization_url(redirect_uri=variant).url)


def test_iss_in_every_authorization_response(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """RFC 9207 / RFC 9700 §4.4.2 mix-up defence: discovery sets
    `authorization_response_iss_parameter_supported`; success and error responses both carry
    `iss` = the issuer; openid-client refuses a response whose `iss` is another issuer's or
    missing, before redeeming the code (which stays usable)"""
    assert rp.discover()["authorization_response_iss_parameter_supported"] is True
    error = silent(browser, rp.authorization_url(prompt="none").url)
    assert error.params["iss"] == server.url and error.params["error"] == "login_required"
    request = rp.authorization_url()
    callback = browser.authorize(request.url, user[0], DEMO_PASSWORD)
    assert callback.params["iss"] == server.url
    for forged in ("https://attacker.example", None):
        with pytest.raises(Refused) as refused:
            rp.callback(request, with_param(callback.url, "iss", forged))
        assert refused.value.error is None  # openid-client's own check, no request was made
        assert refused.value.code in {
            "OAUTH_INVALID_RESPONSE",
            "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED",
        }, refused.value
    assert rp.callback(request, callback.url).claims["sub"] == user[1]


def test_refresh_token_rotation_and_reuse_detection(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """RFC 9700 §4.14.2 refresh rotation: every refresh returns a new refresh token; replaying a
    retired one is `invalid_grant` and revokes the family: the newest refresh token and its
    access token stop working too"""
    request = rp.authorization_url(scope="openid offline_access")
    first = rp.callback(request, browser.authorize(request.url, user[0], DEMO_PASSWORD).url)
    second = rp.refresh(first.refresh_token)
    third = rp.refresh(second.refresh_token)
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    with pytest.raises(Refused) as replay:
        rp.refresh(first.refresh_token)
    assert replay.value.error == "invalid_grant"
    with pytest.raises(Refused) as newest:
        rp.refresh(third.refresh_token)
    assert newest.value.error == "invalid_grant"
    assert rp.introspect(third.access_token)["active"] is False
    with pytest.raises(Refused) as userinfo:
        rp.userinfo(third.access_token)
    assert userinfo.value.status == 401


def test_pkce_downgrade_and_plain_refused(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """RFC 9700 §2.1.1, §4.8.2 PKCE downgrade: `code_challenge_method=plain` is refused at the
    authorization endpoint; a `code_verifier` for a code issued without a challenge is
    `invalid_grant` (a downgrade attacker cannot strip the challenge)"""
    plain = rp.authorization_url(pkce=False, code_challenge="p" * 43, code_challenge_method="plain")
    assert silent(browser, plain.url).params["error"] == "invalid_request"
    request = rp.authorization_url(pkce=False)
    callback = browser.authorize(request.url, user[0], DEMO_PASSWORD)
    with pytest.raises(Refused) as refused:
        rp.callback(request, callback.url, code_verifier="v" * 43)
    assert refused.value.error == "invalid_grant"


def test_token_responses_are_not_cached(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """RFC 6749 §5.1 / RFC 9700 §4.3: the authorization response (a 303 carrying the code), the
    token response and the token endpoint's error response all say `Cache-Control: no-store`"""
    first = rp.authorization_url()
    browser.authorize(first.url, user[0], DEMO_PASSWORD)
    request = rp.authorization_url(prompt="none")
    redirect = browser.http.get(request.url)
    assert redirect.status_code == 303 and redirect.headers["cache-control"] == "no-store"
    code = Callback(redirect.headers["location"]).params["code"]
    assert rp.client_secret is not None and request.code_verifier is not None
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": request.code_verifier,
    }
    endpoint, auth = rp.discover()["token_endpoint"], (rp.client_id, rp.client_secret)
    ok = httpx.post(endpoint, data=body, auth=auth)
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
    again = httpx.post(endpoint, data=body, auth=auth)
    assert again.status_code == 400 and again.headers["cache-control"] == "no-store"
