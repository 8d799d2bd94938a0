"""Driving the code flow by hand with httpx, as a browser and a relying party would.

A :class:`Browser` keeps its cookies (the session and browser-binding cookies), follows the
provider's redirects to its hosted page, fills in the password form, and stops at the redirect to
the client's redirect URI; the relying party's half redeems the code at the token endpoint with
PKCE S256 and ``client_secret_basic``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bench.server import Seeded
from bench.stats import BenchError

SCOPE = "openid email"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ACTION = re.compile(r'action="([^"]+/password)"')
_USE_PASSWORD = re.compile(r'href="([^"]*[?&]method=password)"')


def basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1 form-encodes both parts first; these values are URL-safe already.
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class FlowResult:
    tokens: dict[str, Any]
    page: str | None
    """``login`` or ``reauth`` when a hosted page was shown, None when a code came at once."""
    page_s: float
    """Time to the password form: the interaction page, and the "Use your password" page when
    another method is offered first."""
    password_link: bool
    """Whether the "Use your password" page had to be fetched (another method was offered first)."""
    authorize_s: float
    password_s: float
    token_s: float

    @property
    def total_s(self) -> float:
        return self.authorize_s + self.page_s + self.password_s + self.token_s


class Browser:
    def __init__(self, base_url: str, seeded: Seeded) -> None:
        self.seeded = seeded
        self.issuer = base_url
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
        self.auth_header = basic_auth(seeded.client_id, seeded.client_secret)

    def close(self) -> None:
        self.http.close()

    def _callback_code(self, response: httpx.Response, state: str) -> str:
        location = response.headers.get("location", "")
        if response.status_code != 303 or not location.startswith(self.seeded.redirect_uri):
            raise BenchError(f"expected a redirect to the client, got {response.status_code}")
        query = parse_qs(urlsplit(location).query)
        if query.get("state") != [state] or query.get("iss") != [self.issuer]:
            raise BenchError("the authorization response has the wrong state or iss")
        if "code" not in query:
            raise BenchError(f"authorization error: {query.get('error')}")
        return str(query["code"][0])

    def code_flow(self, **extra: str) -> FlowResult:
        """One authorization request to redeemed tokens, answering a password page if shown."""
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        params = {
            "client_id": self.seeded.client_id,
            "redirect_uri": self.seeded.redirect_uri,
            "response_type": "code",
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        t0 = time.perf_counter()
        r = self.http.get("/authorize", params=params)
        t1 = time.perf_counter()
        page_kind: str | None = None
        password_link = False
        t2 = t3 = t1
        if r.status_code == 303 and r.headers["location"].startswith("/interaction/"):
            page = self.http.get(r.headers["location"])
            link = _USE_PASSWORD.search(page.text)
            if _ACTION.search(page.text) is None and link is not None:
                # Another method is offered first: "Use your password", as a user would.
                page = self.http.get(link.group(1))
                password_link = True
            t2 = time.perf_counter()
            csrf, action = _CSRF.search(page.text), _ACTION.search(page.text)
            if page.status_code != 200 or csrf is None or action is None:
                raise BenchError(f"no password form on the hosted page ({page.status_code})")
            form = {"csrf_token": csrf.group(1), "password": self.seeded.password}
            if 'name="email"' in page.text:
                page_kind = "login"
                form["email"] = self.seeded.email
            else:
                page_kind = "reauth"
            r = self.http.post(action.group(1), data=form)
            t3 = time.perf_counter()
        code = self._callback_code(r, state)
        t4 = time.perf_counter()
        tok = self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.seeded.redirect_uri,
                "code_verifier": verifier,
            },
            headers={"Authorization": self.auth_header},
        )
        t5 = time.perf_counter()
        if tok.status_code != 200:
            raise BenchError(f"code redemption failed: {tok.status_code} {tok.text[:200]}")
        return FlowResult(
            tokens=tok.json(),
            page=page_kind,
            page_s=t2 - t1,
            password_link=password_link,
            authorize_s=t1 - t0,
            password_s=t3 - t2,
            token_s=t5 - t4,
        )
