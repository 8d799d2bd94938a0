"""Real access tokens from a real FreshID: an authorization code flow driven by hand (the pattern
of tests/protocol/test_smoke.py), with time travel to make the proof old."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.conftest import DEMO_PASSWORD, RunningServer

REDIRECT_URI = "http://127.0.0.1:9/cb"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@contextmanager
def shifted(server: RunningServer, seconds: int) -> Iterator[None]:
    before = server.clock.offset
    server.clock.offset = before + seconds
    try:
        yield
    finally:
        server.clock.offset = before


class User:
    """A user's browser (cookies) at one relying party registered on the server."""

    def __init__(self, server: RunningServer, email: str = "ada@example.com") -> None:
        self.server = server
        self.email = email
        server.create_user(email)
        self.client_id, secret = server.create_client(REDIRECT_URI)
        assert secret is not None
        self.secret = secret
        self.http = httpx.Client(base_url=server.url, timeout=10)

    def close(self) -> None:
        self.http.close()

    def authorization_url(self, verifier: str, **extra: str) -> str:
        params = {
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid email",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
            **extra,
        }
        return str(httpx.URL(f"{self.server.url}/authorize", params=params))

    def follow(self, url: str) -> dict[str, list[str]]:
        """Open ``url`` and prove whatever the provider asks for; the callback's query."""
        r = self.http.get(url)
        for _ in range(6):
            assert r.status_code in (302, 303), r.text[:500]
            location = urljoin(str(r.url), r.headers["location"])
            if location.startswith(REDIRECT_URI):
                return parse_qs(urlsplit(location).query)
            page = self.http.get(location)
            assert page.status_code == 200, page.text[:500]
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            action = re.search(r'action="([^"]+/password)"', page.text)
            assert csrf and action, page.text[:500]
            data = {"csrf_token": csrf.group(1), "password": DEMO_PASSWORD}
            if 'name="email"' in page.text:
                data["email"] = self.email
            r = self.http.post(urljoin(location, action.group(1)), data=data)
        raise AssertionError("the provider kept asking")

    def redeem(self, code: str, verifier: str) -> dict[str, str]:
        tok = self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(self.client_id, self.secret),
        )
        assert tok.status_code == 200, tok.text
        body: dict[str, str] = tok.json()
        return body

    def tokens(self, **extra: str) -> dict[str, str]:
        verifier = secrets.token_urlsafe(48)
        query = self.follow(self.authorization_url(verifier, **extra))
        return self.redeem(query["code"][0], verifier)

    def access_token(self, age: int = 0) -> str:
        """A current access token whose proof (``auth_time``) is ``age`` seconds old.

        With ``age``, the user signs in with the provider's clock in the past, then gets a new
        token silently at the real time: its ``iat``/``exp`` are current, its ``auth_time`` old.
        """
        if age:
            with shifted(self.server, -age):
                self.tokens()
        return self.tokens()["access_token"]
