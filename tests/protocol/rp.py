"""A relying party built on Authlib, and a cookie-keeping "browser" that walks the hosted pages.

The relying party does what a careful RP does: PKCE S256, a nonce, RFC 9207 ``iss`` and ``state``
checks on the authorization response, and ID token validation against the provider's JWKS
(signature, ``alg``, ``kid``, ``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``nonce``). The browser
follows redirects only while they stay on the provider, parses the HTML forms it is shown, and stops
at the first redirect that leaves the provider (the client's redirect URI).
"""

from __future__ import annotations

import json
import secrets
import ssl
import warnings
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from joserfc import jwt
from joserfc.jwk import KeySet

with warnings.catch_warnings():
    # Authlib 1.9 prefers the httpx2 package and warns when it falls back to httpx.
    warnings.filterwarnings("ignore", "The httpx module", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.integrations.httpx_client import OAuthError as OAuthError  # re-exported

PageKind = Literal["login", "reauth", "logout", "error", "other"]

# One TLS context for every client: building one per httpx.Client costs tens of milliseconds.
_TLS = ssl.create_default_context()


# --- the browser -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    action: str
    fields: dict[str, str]
    buttons: list[tuple[str, str]] = field(default_factory=list)
    """Named submit buttons as (name, value); pass the one to press as a keyword to ``submit``."""


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.title = ""
        self._in_title = False
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self._current = Form(a.get("action", ""), {})
            self.forms.append(self._current)
        elif self._current is not None and "name" in a:
            if tag == "input":
                self._current.fields[a["name"]] = a.get("value", "")
            elif tag == "button":
                self._current.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "form":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


@dataclass(frozen=True)
class Page:
    """An HTML page the provider showed."""

    status: int
    url: str
    html: str
    title: str
    forms: list[Form]

    @property
    def kind(self) -> PageKind:
        actions = {f.action.rsplit("/", 1)[-1]: f for f in self.forms}
        if "password" in actions:
            return "login" if "email" in actions["password"].fields else "reauth"
        if "confirm" in actions:
            return "logout"
        if "Error code" in self.html or self.status >= 400:
            return "error"
        return "other"

    def form(self, action_suffix: str) -> Form:
        for f in self.forms:
            if f.action.endswith(action_suffix):
                return f
        raise AssertionError(f"no form posting to *{action_suffix} on {self.title!r}")


@dataclass(frozen=True)
class Callback:
    """The provider sent the browser to a URL that is not its own (the client's redirect URI)."""

    url: str

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @property
    def base(self) -> str:
        return self.url.split("?", 1)[0]


Landing = Page | Callback


class Browser:
    """An ``httpx.Client`` with cookies that behaves like a user's browser on the hosted pages."""

    def __init__(self, provider_url: str, cookies: dict[str, str] | None = None) -> None:
        self.provider_url = provider_url.rstrip("/")
        self.http = httpx.Client(follow_redirects=False, cookies=cookies, timeout=10, verify=_TLS)
        self.shown: list[PageKind] = []
        """Every page kind shown to the user, in order (to prove that UI did or did not appear)."""

    def close(self) -> None:
        self.http.close()

    def _on_provider(self, url: str) -> bool:
        return url == self.provider_url or url.startswith(self.provider_url + "/")

    def _land(self, response: httpx.Response) -> Landing:
        for _ in range(10):
            if response.status_code not in (301, 302, 303, 307, 308):
                page = _page(response)
                self.shown.append(page.kind)
                return page
            location = urljoin(str(response.url), response.headers["location"])
            if not self._on_provider(location):
                return Callback(location)
            response = self.http.get(location)
        raise AssertionError("redirect loop on the provider")

    def open(self, url: str) -> Landing:
        return self._land(self.http.get(urljoin(self.provider_url + "/", url)))

    def open_by_post(self, url: str) -> Landing:
        """The same request sent as a form POST (OIDC Core §3.1.2.1 allows GET and POST)."""
        endpoint, _, query = url.partition("?")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._land(self.http.post(endpoint, content=query.encode(), headers=form))

    def submit(self, form: Form, /, **values: str) -> Landing:
        data = {**form.fields, **values}
        url = urljoin(self.provider_url + "/", form.action)
        return self._land(self.http.post(url, data=data))

    def authorize(self, url: str, email: str, password: str) -> Callback:
        """Open an authorization URL and prove whatever the provider asks for, as ``email``."""
        landing = self.open(url)
        for _ in range(3):
            if isinstance(landing, Callback):
                return landing
            if landing.kind == "login":
                landing = self.submit(landing.form("/password"), email=email, password=password)
            elif landing.kind == "reauth":
                landing = self.submit(landing.form("/password"), password=password)
            else:
                raise AssertionError(f"unexpected page {landing.title!r} ({landing.status})")
        raise AssertionError("the provider kept asking")

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get("freshid_session")


def _page(response: httpx.Response) -> Page:
    assert response.headers.get("content-type", "").startswith("text/html"), (
        response.status_code,
        response.headers.get("content-type"),
        response.text[:200],
    )
    parser = _FormParser()
    parser.feed(response.text)
    return Page(
        response.status_code, str(response.url), response.text, parser.title.strip(), parser.forms
    )


# --- the relying party -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthRequest:
    url: str
    state: str
    nonce: str | None
    verifier: str | None


@dataclass(frozen=True)
class Tokens:
    raw: dict[str, Any]
    id_claims: dict[str, Any]

    @property
    def access_token(self) -> str:
        return str(self.raw["access_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.raw["refresh_token"])

    @property
    def id_token(self) -> str:
        return str(self.raw["id_token"])


class RelyingParty:
    """One registered client, talking to the provider's back channel through Authlib."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        scope: str = "openid email offline_access",
        auth_method: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        method = auth_method or ("client_secret_basic" if client_secret else "none")
        self.oauth = OAuth2Client(
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method=method,
            revocation_endpoint_auth_method=method,
            timeout=10,
            verify=_TLS,
        )
        self.metadata: dict[str, Any] = self._get(f"{issuer}/.well-known/openid-configuration")
        self._jwks: dict[str, Any] | None = None

    def _get(self, url: str) -> dict[str, Any]:
        response = self.oauth.request("GET", url, withhold_token=True)
        assert response.status_code == 200, (url, response.status_code)
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self.oauth.close()

    def authorization_request(
        self, *, pkce: bool = True, nonce: bool = True, **params: str
    ) -> AuthRequest:
        """A code-flow request URL with state, a nonce and S256 PKCE (each may be left out)."""
        verifier = secrets.token_urlsafe(48) if pkce else None
        nonce_value = secrets.token_urlsafe(16) if nonce else None
        url, state = self.oauth.create_authorization_url(
            self.metadata["authorization_endpoint"],
            code_verifier=verifier,
            nonce=nonce_value,
            **params,
        )
        return AuthRequest(url, state, nonce_value, verifier)

    def check_response(self, request: AuthRequest, callback: Callback) -> dict[str, str]:
        """RFC 9207 and RFC 6749 §4.1.2: the response is ours, from our issuer, for our state."""
        params = callback.params
        # Our redirect URI exactly, its own query kept, the response's parameters added.
        assert callback.url.startswith(
            self.redirect_uri + ("&" if "?" in self.redirect_uri else "?")
        )
        assert params.get("iss") == self.issuer
        assert params.get("state") == request.state
        return params

    def redeem(self, request: AuthRequest, callback: Callback, **extra: str) -> Tokens:
        """Exchange the code (raises Authlib's ``OAuthError`` on an error response)."""
        self.check_response(request, callback)
        if request.verifier is not None:
            extra.setdefault("code_verifier", request.verifier)
        token = self.oauth.fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=callback.url,
            state=request.state,
            **extra,
        )
        return Tokens(dict(token), self.validate_id_token(token["id_token"], request.nonce))

    def refresh(self, refresh_token: str, scope: str | None = None) -> Tokens:
        """RFC 6749 §6; without ``scope`` the grant's own scope (Authlib would resend ours)."""
        token = self.oauth.refresh_token(
            self.metadata["token_endpoint"], refresh_token=refresh_token, scope=scope
        )
        return Tokens(dict(token), self.validate_id_token(token["id_token"], None))

    def token_request(self, body: dict[str, str] | bytes, auth: Any = None) -> httpx.Response:
        """A raw token request with this client's credentials (for the negative cases); a
        ``bytes`` body is sent as it is, as ``application/x-www-form-urlencoded``."""
        content = body if isinstance(body, bytes) else None
        response: httpx.Response = self.oauth.request(
            "POST",
            self.metadata["token_endpoint"],
            data=None if isinstance(body, bytes) else body,
            content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            withhold_token=True,
            auth=auth or self.oauth.client_auth(self.oauth.token_endpoint_auth_method),
        )
        return response

    def jwks(self, *, refresh: bool = False) -> dict[str, Any]:
        """The provider's JWKS, cached; fetched again for a ``kid`` it does not hold."""
        if self._jwks is None or refresh:
            self._jwks = self._get(self.metadata["jwks_uri"])
        return self._jwks

    def validate_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """OIDC Core §3.1.3.7: signature by a published key, then the claims."""
        kid = jose_header(id_token).get("kid")
        jwks = self.jwks()
        if kid not in {k.get("kid") for k in jwks["keys"]}:
            jwks = self.jwks(refresh=True)
        decoded = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["ES256"])  # type: ignore[arg-type]
        assert decoded.header.get("alg") == "ES256"
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        jwt.JWTClaimsRegistry(leeway=5, **options).validate(decoded.claims)
        claims = dict(decoded.claims)
        if isinstance(claims["aud"], list) and len(claims["aud"]) > 1:
            assert "azp" in claims
        if "azp" in claims:
            assert claims["azp"] == self.client_id
        return claims

    def userinfo(self, access_token: str) -> httpx.Response:
        response: httpx.Response = self.oauth.request(
            "GET",
            self.metadata["userinfo_endpoint"],
            withhold_token=True,
            headers={"Authorization": f"Bearer {access_token}"},
        )
        return response

    def introspect(self, token: str) -> dict[str, Any]:
        response = self.oauth.introspect_token(self.metadata["introspection_endpoint"], token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def revoke(self, token: str, hint: str | None = None) -> httpx.Response:
        response: httpx.Response = self.oauth.revoke_token(
            self.metadata["revocation_endpoint"], token=token, token_type_hint=hint
        )
        return response


# --- time travel -------------------------------------------------------------------------------


class _Shiftable(Protocol):
    offset: int


@contextmanager
def shifted(clock: _Shiftable, seconds: int) -> Iterator[None]:
    """Run the provider ``seconds`` away from now (negative: in the past), then come back."""
    before = clock.offset
    clock.offset = seconds
    try:
        yield
    finally:
        clock.offset = before


def sign_in(rp: RelyingParty, browser: Browser, email: str, password: str, **params: Any) -> Tokens:
    """One complete code flow: request, whatever proof the provider asks for, redemption."""
    request = rp.authorization_request(**params)
    return rp.redeem(request, browser.authorize(request.url, email, password))


def jose_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, unverified."""
    segment = token.split(".", 1)[0]
    header: dict[str, Any] = json.loads(urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return header


def b64url_json(value: dict[str, Any]) -> str:
    return urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
