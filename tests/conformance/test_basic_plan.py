"""The OpenID Foundation Basic OP plan (code flow, ``client_secret_basic``), re-created as
black-box checks driven by openid-client, a certified relying party. The browser walks FreshID's
hosted pages; openid-client builds every request and judges every response.

A proof is made old by signing in with the provider's clock 300 s in the past.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from tests.conformance.conftest import POST_LOGOUT_URI, REDIRECT_URI, register
from tests.conformance.openid_client import AuthURL, CertifiedRP, NodeRP, Refused, TokenSet
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.rp import Browser, Callback, Page, shifted

User = tuple[str, str]
AGE = 300


def sign_in(
    rp: CertifiedRP, browser: Browser, email: str, *, rp_max_age: int | None = None, **params: Any
) -> tuple[AuthURL, TokenSet]:
    """A whole code flow; ``rp_max_age`` is the ``max_age`` openid-client holds the token to."""
    request = rp.authorization_url(**params)
    callback = browser.authorize(request.url, email, DEMO_PASSWORD)
    return request, rp.callback(request, callback.url, max_age=rp_max_age)


def old_sign_in(
    server: RunningServer, rp: CertifiedRP, browser: Browser, email: str, **params: Any
) -> TokenSet:
    with shifted(server.clock, -AGE):
        return sign_in(rp, browser, email, **params)[1]


def silent(browser: Browser, url: str) -> Callback:
    """Open ``url``; FreshID must answer with a redirect to the client and show no page."""
    before = list(browser.shown)
    landing = browser.open(url)
    assert isinstance(landing, Callback), landing
    assert browser.shown == before
    return landing


def error_page(browser: Browser, url: str) -> Page:
    """FreshID must show its own error page and never redirect to an unverified URI."""
    landing = browser.open(url)
    assert isinstance(landing, Page), f"redirected to {landing}"
    assert landing.status == 400 and landing.kind == "error"
    return landing


def with_param(url: str, name: str, value: str | None) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    if value is not None:
        query.append((name, value))
    return parts._replace(query=urlencode(query)).geturl()


def test_oidcc_server(server: RunningServer, user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-server: a code flow with PKCE S256, nonce and state completes; openid-client accepts
    the authorization response (state, RFC 9207 `iss`) and the ID token (ES256 signature by a
    JWKS key, `iss`, `aud`, `exp`, `iat`, `nonce`); `sub` is the user, `auth_time` and `sid`
    are present, `azp` is the client"""
    email, sub = user
    request, tokens = sign_in(rp, browser, email)
    assert browser.shown == ["login"]
    c = tokens.claims
    assert c["iss"] == server.url and c["aud"] == rp.client_id and c["azp"] == rp.client_id
    assert c["sub"] == sub and c["nonce"] == request.nonce
    assert isinstance(c["auth_time"], int) and c["auth_time"] <= c["iat"] < c["exp"]
    assert isinstance(c["sid"], str) and c["sid"]
    assert tokens.tokens["token_type"].lower() == "bearer" and tokens.tokens["expires_in"] > 0


def test_oidcc_response_type_missing(rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-response-type-missing: a request without `response_type` returns `invalid_request` to
    the client, with the state and `iss`; openid-client reports it as the provider's error"""
    request = rp.authorization_url(response_type="")
    callback = silent(browser, with_param(request.url, "response_type", None))
    with pytest.raises(Refused) as refused:
        rp.callback(request, callback.url)
    assert refused.value.error == "invalid_request"
    assert callback.params["state"] == request.state


def test_oidcc_userinfo_get(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-userinfo-get: openid-client's UserInfo GET with the bearer header answers 200 JSON
    whose `sub` equals the ID token's (it checks that itself)"""
    email, sub = user
    _, tokens = sign_in(rp, browser, email)
    status, body = rp.userinfo(tokens.access_token, sub=tokens.claims["sub"])
    assert status == 200 and body["sub"] == sub


def test_oidcc_userinfo_post_header(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-userinfo-post-header: UserInfo by POST with the bearer header answers as GET does"""
    email, sub = user
    _, tokens = sign_in(rp, browser, email, scope="openid email")
    get = rp.userinfo(tokens.access_token, sub=sub)
    post = rp.userinfo(tokens.access_token, method="POST")
    assert post == get and post[1]["email"] == email


def test_oidcc_userinfo_post_body(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-userinfo-post-body: the token in a form body (RFC 6750 §2.2, optional) is refused with
    401 `invalid_token` and a `WWW-Authenticate: Bearer` challenge, never a 500; the plan accepts
    a refusal (as a warning)"""
    email, _ = user
    _, tokens = sign_in(rp, browser, email)
    r = httpx.post(rp.discover()["userinfo_endpoint"], data={"access_token": tokens.access_token})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"] == "invalid_token"


def test_oidcc_userinfo_bearer_refusals(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-userinfo (bearer): no token, a garbage token and an ID token in place of the access
    token are each refused with 401 and a `WWW-Authenticate: Bearer error="invalid_token"`
    challenge that openid-client parses"""
    email, _ = user
    _, tokens = sign_in(rp, browser, email)
    for bad in ("not-a-token", tokens.id_token):
        with pytest.raises(Refused) as refused:
            rp.userinfo(bad)
        assert refused.value.status == 401, refused.value
        assert refused.value.name == "WWWAuthenticateChallengeError", refused.value
    r = httpx.get(rp.discover()["userinfo_endpoint"])
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_oidcc_scope_email_and_other_scope_order(
    user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """oidcc-scope-email, oidcc-ensure-other-scope-order-succeeds: `email openid` (openid last)
    releases `email` and `email_verified` at UserInfo and in the ID token; unsupported scopes
    (`profile address phone`, oidcc-scope-all) are ignored, not an error"""
    email, sub = user
    _, tokens = sign_in(rp, browser, email, scope="email openid profile address phone")
    assert tokens.claims["email"] == email
    status, body = rp.userinfo(tokens.access_token, sub=sub)
    assert status == 200 and body["email"] == email and "email_verified" in body
    assert set(tokens.tokens["scope"].split()) == {"openid", "email"}


def test_oidcc_prompt_login(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """oidcc-prompt-login: with a live session, `prompt=login` shows the sign-in step again, keeps
    the session (`sid`) and issues an ID token with a later `auth_time`"""
    email, _ = user
    first = old_sign_in(server, rp, browser, email)
    _, second = sign_in(rp, browser, email, prompt="login")
    assert browser.shown == ["login", "reauth"]
    assert second.claims["auth_time"] > first.claims["auth_time"]
    assert second.claims["sid"] == first.claims["sid"]


def test_oidcc_prompt_none_not_logged_in(rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-prompt-none-not-logged-in: without a session, `prompt=none` shows no page and
    returns `login_required` with the state and `iss`; openid-client surfaces the error"""
    request = rp.authorization_url(prompt="none")
    callback = silent(browser, request.url)
    assert callback.params["iss"] and "code" not in callback.params
    with pytest.raises(Refused) as refused:
        rp.callback(request, callback.url)
    assert refused.value.error == "login_required"


def test_oidcc_prompt_none_logged_in(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-prompt-none-logged-in: with a session, `prompt=none` issues a code with no page; the
    ID token has the same `sub`, `sid` and `auth_time` and the new request's nonce"""
    email, _ = user
    _, first = sign_in(rp, browser, email)
    request = rp.authorization_url(prompt="none")
    second = rp.callback(request, silent(browser, request.url).url)
    for claim in ("sub", "sid", "auth_time"):
        assert second.claims[claim] == first.claims[claim], claim
    assert second.claims["nonce"] == request.nonce


def test_oidcc_max_age_1(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """oidcc-max-age-1: a proof older than 1 s makes FreshID ask again; openid-client, told
    `max_age=1`, accepts the new ID token's `auth_time`, which moved forward"""
    email, _ = user
    first = old_sign_in(server, rp, browser, email)
    _, second = sign_in(rp, browser, email, rp_max_age=1, max_age="1")
    assert browser.shown == ["login", "reauth"]
    assert second.claims["auth_time"] > first.claims["auth_time"]


def test_oidcc_max_age_10000(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """oidcc-max-age-10000: a 300 s old proof satisfies `max_age=10000`: no page, the same
    `auth_time`, and openid-client's `max_age` check passes"""
    email, _ = user
    first = old_sign_in(server, rp, browser, email)
    request = rp.authorization_url(max_age="10000")
    second = rp.callback(request, silent(browser, request.url).url, max_age=10000)
    assert second.claims["auth_time"] == first.claims["auth_time"]


def test_oidcc_id_token_hint(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-id-token-hint: `prompt=none` with the previous ID token as `id_token_hint` issues a
    code silently for the same `sub`"""
    email, _ = user
    _, first = sign_in(rp, browser, email)
    request = rp.authorization_url(prompt="none", id_token_hint=first.id_token)
    second = rp.callback(request, silent(browser, request.url).url)
    assert second.claims["sub"] == first.claims["sub"]


def test_oidcc_login_hint(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-login-hint: `login_hint` pre-fills the sign-in page's email; the flow completes"""
    email, sub = user
    request = rp.authorization_url(login_hint=email)
    page = browser.open(request.url)
    assert isinstance(page, Page) and page.kind == "login"
    assert page.form("/password").fields["email"] == email
    callback = browser.submit(page.form("/password"), password=DEMO_PASSWORD)
    assert isinstance(callback, Callback)
    assert rp.callback(request, callback.url).claims["sub"] == sub


def test_oidcc_nonce(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-ensure-request-without-nonce-succeeds-for-code-flow, nonce invalid: without a nonce
    the code flow succeeds and the ID token has none; with one, the ID token carries exactly it,
    and openid-client refuses the token when it expects a different nonce"""
    email, _ = user
    request = rp.authorization_url(nonce=False)
    tokens = rp.callback(request, browser.authorize(request.url, email, DEMO_PASSWORD).url)
    assert "nonce" not in tokens.claims
    request = rp.authorization_url(prompt="none")
    with pytest.raises(Refused) as refused:
        rp.callback(request, silent(browser, request.url).url, nonce="not-the-nonce-we-sent")
    assert refused.value.code == "OAUTH_JWT_CLAIM_COMPARISON_FAILED", refused.value
    assert '"nonce"' in refused.value.cause["message"]


def test_oidcc_codereuse(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """oidcc-codereuse: a second redemption of the same code is `invalid_grant`"""
    email, _ = user
    request = rp.authorization_url()
    callback = browser.authorize(request.url, email, DEMO_PASSWORD)
    rp.callback(request, callback.url)
    with pytest.raises(Refused) as refused:
        rp.callback(request, callback.url)
    assert refused.value.error == "invalid_grant" and refused.value.status == 400


def test_oidcc_codereuse_30seconds(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """oidcc-codereuse-30seconds: a second redemption 30 s later is `invalid_grant`, and the
    access and refresh tokens of the first are revoked (UserInfo 401, introspection inactive)"""
    email, _ = user
    request = rp.authorization_url(scope="openid offline_access")
    callback = browser.authorize(request.url, email, DEMO_PASSWORD)
    first = rp.callback(request, callback.url)
    with shifted(server.clock, 30), pytest.raises(Refused) as refused:
        rp.callback(request, callback.url)
    assert refused.value.error == "invalid_grant"
    with pytest.raises(Refused) as userinfo:
        rp.userinfo(first.access_token)
    assert userinfo.value.status == 401
    assert rp.introspect(first.access_token)["active"] is False
    assert rp.introspect(first.refresh_token)["active"] is False


def test_oidcc_ensure_registered_redirect_uri(rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-ensure-registered-redirect-uri: an unregistered `redirect_uri` gets FreshID's error
    page, never a redirect"""
    error_page(browser, rp.authorization_url(redirect_uri="http://127.0.0.1:9/elsewhere").url)


def test_oidcc_ensure_redirect_uri_in_authorization_request(
    rp: CertifiedRP, browser: Browser
) -> None:
    """oidcc-ensure-redirect-uri-in-authorization-request: no `redirect_uri` gets the error page
    (FreshID requires it even for a client with one registered URI)"""
    error_page(browser, rp.authorization_url(redirect_uri=None).url)


def test_oidcc_redirect_uri_query_ok(
    server: RunningServer, node_rp: NodeRP, user: User, browser: Browser
) -> None:
    """oidcc-redirect-uri-query-OK: a registered URI with a query works; the response keeps the
    query and adds `code`, `state`, `iss`; openid-client redeems the code"""
    registered = REDIRECT_URI + "?foo=bar"
    rp = register(server, node_rp, registered)
    request = rp.authorization_url()
    callback = browser.authorize(request.url, user[0], DEMO_PASSWORD)
    assert callback.url.startswith(registered + "&")
    assert callback.params["foo"] == "bar"
    # openid-client strips the whole query to find the redirect URI unless told the real one.
    tokens = rp.callback(request, callback.url, redirect_uri=registered)
    assert tokens.claims["sub"] == user[1]


def test_oidcc_redirect_uri_query_mismatch(
    server: RunningServer, node_rp: NodeRP, browser: Browser
) -> None:
    """oidcc-redirect-uri-query-mismatch: registered `?foo=bar`, requested `?foo=zab`: error page"""
    rp = register(server, node_rp, REDIRECT_URI + "?foo=bar")
    error_page(browser, rp.authorization_url(redirect_uri=REDIRECT_URI + "?foo=zab").url)


def test_oidcc_redirect_uri_query_added(rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-redirect-uri-query-added: registered without a query, requested with `?foo=bar`:
    error page"""
    error_page(browser, rp.authorization_url(redirect_uri=REDIRECT_URI + "?foo=bar").url)


def test_oidcc_refresh_token(
    server: RunningServer, user: User, rp: CertifiedRP, browser: Browser
) -> None:
    """oidcc-refresh-token: with `offline_access`, openid-client's refresh returns new access,
    refresh and ID tokens; the new ID token validates and keeps `iss`, `sub`, `aud`, `sid` and
    the original `auth_time` (OIDC Core §12.2); the new access token works at UserInfo"""
    email, sub = user
    _, first = sign_in(rp, browser, email, scope="openid offline_access")
    with shifted(server.clock, 5):
        second = rp.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    for claim in ("iss", "sub", "aud", "sid", "auth_time"):
        assert second.claims[claim] == first.claims[claim], claim
    assert second.claims["iat"] > first.claims["iat"]
    assert rp.userinfo(second.access_token, sub=sub)[0] == 200


def test_oidcc_refresh_token_client_secret_post(
    server: RunningServer, node_rp: NodeRP, user: User, browser: Browser
) -> None:
    """oidcc-server (client_secret_post), oidcc-refresh-token: the same flow and refresh with the
    secret in the form body"""
    rp = register(server, node_rp, auth="post")
    _, first = sign_in(rp, browser, user[0], scope="openid offline_access")
    assert rp.refresh(first.refresh_token).claims["sub"] == user[1]


def test_pkce_s256(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-ensure-request-with-valid-pkce-succeeds, PKCE S256 (RFC 7636): the right verifier
    succeeds; a wrong or missing verifier for a code with a challenge is `invalid_grant`"""
    email, _ = user
    sign_in(rp, browser, email)
    for verifier in ("x" * 43, None):
        request = rp.authorization_url(prompt="none")
        callback = silent(browser, request.url)
        with pytest.raises(Refused) as refused:
            rp.callback(request, callback.url, code_verifier=verifier)
        assert refused.value.error == "invalid_grant", verifier


def test_pkce_public_client(
    server: RunningServer, node_rp: NodeRP, user: User, browser: Browser
) -> None:
    """PKCE for public clients (RFC 9700 §2.1.1): a public client (`none` auth) completes with
    S256; without a `code_challenge` its request is `invalid_request`; `plain` is refused"""
    rp = register(server, node_rp, public=True)
    assert sign_in(rp, browser, user[0])[1].claims["sub"] == user[1]
    callback = silent(browser, rp.authorization_url(pkce=False).url)
    assert callback.params["error"] == "invalid_request"
    plain = rp.authorization_url(pkce=False, code_challenge="p" * 43, code_challenge_method="plain")
    assert silent(browser, plain.url).params["error"] == "invalid_request"


def test_rp_initiated_logout(user: User, rp: CertifiedRP, browser: Browser) -> None:
    """oidcc-rp-initiated-logout: openid-client's end-session URL (`id_token_hint`,
    `post_logout_redirect_uri`, `state`) shows a confirmation; confirming redirects to the
    registered URI with the state and ends the session (`prompt=none` is then `login_required`)"""
    email, _ = user
    _, tokens = sign_in(rp, browser, email)
    url = rp.end_session_url(
        id_token_hint=tokens.id_token, post_logout_redirect_uri=POST_LOGOUT_URI, state="bye-1"
    )
    page = browser.open(url)
    assert isinstance(page, Page) and page.kind == "logout"
    landing = browser.submit(page.form("/confirm"), confirm="yes")
    assert isinstance(landing, Callback)
    assert landing.base == POST_LOGOUT_URI and landing.params == {"state": "bye-1"}
    request = rp.authorization_url(prompt="none")
    assert silent(browser, request.url).params["error"] == "login_required"
