"""Hypothesis-driven fuzzing, bounded: the token and parameter parsers in-process, then every
endpoint's parameters through real HTTP. The properties are the same everywhere: no 500, no crash,
and every error says ``error_description`` in RFC 6749 §5.2's characters."""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshid.errors import InvalidRequest
from freshid.protocol import params as request_params
from freshid.protocol.verification import TokenRejected, verify_own
from freshid.tokens import jws
from freshid.tokens.keys import KeyRing, generate
from tests.abuse.conftest import POST_LOGOUT_URI, REDIRECT_URI, SignedIn
from tests.conftest import RunningServer
from tests.protocol.rp import Browser, Page, RelyingParty

DESCRIPTION = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]*$")
# FRESHID_FUZZ_EXAMPLES raises the HTTP budget for a longer local hunt (CI keeps the default).
_HTTP_EXAMPLES = int(os.environ.get("FRESHID_FUZZ_EXAMPLES", "60"))
PARSERS = settings(max_examples=400, deadline=None)
HTTP = settings(
    max_examples=_HTTP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

# --- the parsers -------------------------------------------------------------------------------

_names = st.text(st.characters(codec="utf-8"), max_size=12)
_values = st.text(st.characters(codec="utf-8"), max_size=40)
_pairs = st.lists(st.tuples(_names, _values), max_size=8)


@st.composite
def query_bytes(draw: st.DrawFn) -> bytes:
    """Form bodies: well-formed, percent-encoded, raw bytes, or a mixture."""
    kind = draw(st.sampled_from(["encoded", "raw", "binary"]))
    if kind == "binary":
        return draw(st.binary(max_size=300))
    pairs = draw(_pairs)
    if kind == "encoded":
        return urlencode(pairs).encode()
    sep = draw(st.sampled_from(["&", ";", "&&", "=&"]))
    return sep.join(f"{n}={v}" for n, v in pairs).encode("utf-8", "surrogatepass")


@PARSERS
@given(query_bytes())
def test_params_parse_returns_clean_params_or_invalid_request(raw: bytes) -> None:
    try:
        parsed = request_params.parse(raw)
    except InvalidRequest as exc:
        assert DESCRIPTION.match(exc.description)
        assert exc.to_dict()["error"] == "invalid_request"
        return
    assert isinstance(parsed, request_params.Params)
    for name, value in parsed.items():
        assert isinstance(name, str) and isinstance(value, str)
        assert len(value) <= request_params.MAX_VALUE
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", name + value)


_KEY = generate(0)
_RING = KeyRing([_KEY], 0, 600, 0)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_values, inner, max_size=3),
    max_leaves=8,
)
_headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["ES256", "none", "HS256", "RS256", "ES384", ""]) | _json,
        "kid": st.just(_KEY.kid) | _json,
        "typ": st.sampled_from(["JWT", "at+jwt", "application/at+jwt"]) | _json,
        "jku": _values,
        "jwk": _json,
        "crit": _json,
    },
)


def _segment(value: Any) -> str:
    return jws.b64url_encode(json.dumps(value).encode())


@st.composite
def tokens(draw: st.DrawFn) -> str:
    """Compact-JWS-shaped strings: arbitrary text, or three segments of arbitrary JSON, or one
    signed with the real key whose payload is arbitrary JSON."""
    kind = draw(st.sampled_from(["text", "segments", "signed"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    header, payload = draw(_headers), draw(_json)
    if kind == "signed":
        return (
            jws.sign_es256(payload, _KEY.private_key, _KEY.kid)
            if isinstance(payload, dict)
            else f"{_segment(header)}.{_segment(payload)}.{draw(st.text(max_size=90))}"
        )
    sig = jws.b64url_encode(draw(st.binary(max_size=80)))
    return f"{_segment(header)}.{_segment(payload)}.{sig}"


@PARSERS
@given(tokens())
def test_jws_verify_and_verify_own_only_ever_refuse_cleanly(token: str) -> None:
    try:
        claims = jws.verify(token, _RING.public_key, expected_typ=None)
    except jws.JWSError:
        pass
    else:
        assert isinstance(claims, dict)
    for typ in ("JWT", "at+jwt"):
        with contextlib.suppress(TokenRejected):
            verify_own(token, _RING, issuer="https://issuer.example", typ=typ, now=10)


@pytest.mark.parametrize("alg", [[], {}, ["ES256"], {"ES256": True}])
def test_jws_verify_refuses_a_non_string_alg_with_jwserror(alg: Any) -> None:
    # Found by the property above: a JSON array or object as "alg" raised TypeError (a 500 at
    # every endpoint taking a JWT) until jws.verify checked the type first.
    token = f"{_segment({'alg': alg, 'kid': _KEY.kid})}.{_segment({})}.AAAA"
    with pytest.raises(jws.JWSError):
        jws.verify(token, _RING.public_key)


# --- every endpoint through HTTP ---------------------------------------------------------------

_INTERESTING = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "1e9",
        "99999999999999999999",
        "none",
        "login",
        "none login",
        "consent",
        "code",
        "token",
        "code id_token",
        "S256",
        "plain",
        "openid",
        "openid email offline_access",
        "null",
        "[]",
        "{}",
        '{"id_token":{"acr":{"essential":true,"values":[]}}}',
        '{"id_token":{"acr":{"essential":true,"value":"x"}}}',
        '[{"type":"urn:freshid:action"}]',
        '[{"type":"urn:freshid:action","action":"delete_account"}]',
        "[" * 200,
        "eyJhbGciOiJub25lIn0.e30.",
        "a.b.c",
        "javascript:alert(1)",
        "//evil.example",
        REDIRECT_URI,
        POST_LOGOUT_URI,
        "refresh_token",
        "authorization_code",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "x" * 600,
    ]
)
_param_values = _INTERESTING | _values | _json.map(json.dumps)


def _params(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from(names) | _names, _param_values, max_size=7)


def _assert_clean(response: httpx.Response, label: str) -> None:
    assert response.status_code < 500, (label, response.status_code, response.text[:300])
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            assert DESCRIPTION.match(body.get("error_description", "")), (label, body)


AUTHORIZE = [
    "response_type",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "acr_values",
    "claims",
    "id_token_hint",
    "login_hint",
    "authorization_details",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "request",
    "request_uri",
    "registration",
    "redirect_uri",
    "client_id",
]


def test_fuzz_authorize(
    server: RunningServer, rp: RelyingParty, browser: Browser, signed_in: SignedIn
) -> None:
    base = {
        "client_id": rp.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }
    hint = signed_in.tokens.id_token

    @HTTP
    @given(_params([*AUTHORIZE, "id_token_hint"]), st.booleans(), st.booleans())
    def run(params: dict[str, str], post: bool, with_hint: bool) -> None:
        query = {**base, **({"id_token_hint": hint} if with_hint else {}), **params}
        if post:
            body = urlencode(query)
            response = browser.http.post(
                f"{server.url}/authorize",
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            response = browser.http.get(f"{server.url}/authorize?{urlencode(query)}")
        _assert_clean(response, f"authorize {params!r:.200}")

    run()


def test_fuzz_back_channel(server: RunningServer, rp: RelyingParty, signed_in: SignedIn) -> None:
    assert rp.oauth.client_secret is not None
    secret = str(rp.oauth.client_secret)
    tokens = signed_in.tokens
    real = st.sampled_from(
        [tokens.access_token, tokens.refresh_token, tokens.id_token, rp.client_id, secret]
    )
    names = [
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "token",
        "token_type_hint",
    ]
    auth_headers = st.sampled_from(
        [
            None,
            httpx.BasicAuth(rp.client_id, secret)._auth_header,
            "Basic " + "!" * 10,
            "Basic Og==",
            "Basic " + jws.b64url_encode(b"\xff\xfe:\xff"),
            "Bearer x",
        ]
    )
    values = st.dictionaries(st.sampled_from(names) | _names, _param_values | real, max_size=7)

    @HTTP
    @given(st.sampled_from(["/token", "/introspect", "/revoke", "/userinfo"]), values, auth_headers)
    def run(path: str, params: dict[str, str], auth: str | None) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth is not None:
            headers["Authorization"] = auth
        elif path == "/userinfo":
            # Whatever the token parameter holds, as a header value httpx will send.
            token = quote(params.get("token", ""), safe="-._~+/=")[:2000] or "x"
            headers["Authorization"] = f"Bearer {token}"
        response = httpx.post(f"{server.url}{path}", content=urlencode(params), headers=headers)
        _assert_clean(response, f"{path} {params!r:.200}")

    run()


def test_fuzz_logout_and_hosted_pages(
    server: RunningServer, rp: RelyingParty, browser: Browser, signed_in: SignedIn
) -> None:
    # A second interaction in the signed-in browser: a prompt=login re-authentication page.
    landing = browser.open(rp.authorization_request(prompt="login").url)
    assert isinstance(landing, Page)
    iid = urlsplit(landing.url).path.rsplit("/", 1)[-1]
    csrf = landing.form("/password").fields["csrf_token"]
    paths = [
        "/logout",
        "/logout/confirm",
        f"/interaction/{iid}/password",
        f"/interaction/{iid}/email/send",
        f"/interaction/{iid}/email/verify",
        f"/interaction/{iid}/totp",
        f"/interaction/{iid}/recovery",
        f"/interaction/{iid}/passkey",
        f"/interaction/{iid}/switch",
        f"/email/confirm/{quote('x' * 40)}",
    ]
    names = [
        "csrf_token",
        "confirm",
        "client_id",
        "post_logout_redirect_uri",
        "id_token_hint",
        "state",
        "email",
        "password",
        "code",
        "credential",
    ]
    real = st.sampled_from([csrf, rp.client_id, signed_in.tokens.id_token, signed_in.email])
    values = st.dictionaries(st.sampled_from(names) | _names, _param_values | real, max_size=6)

    @HTTP
    @given(st.sampled_from(paths), values, st.booleans())
    def run(path: str, params: dict[str, str], with_csrf: bool) -> None:
        if with_csrf:
            params = {**params, "csrf_token": csrf}
        if path == "/logout" and len(params) % 2:
            response = browser.http.get(f"{server.url}{path}?{urlencode(params)}")
        else:
            response = browser.http.post(
                f"{server.url}{path}",
                content=urlencode(params),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        _assert_clean(response, f"{path} {params!r:.200}")

    run()
