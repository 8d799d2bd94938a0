"""Acme Console's sign-in, step-up and logout flows against a scripted provider.

``ScriptedFreshID`` plays the provider's two channels: the test drives the front channel (it
reads the authorization request from the console's redirect and builds the redirect back), and
an in-memory transport answers the back channel Authlib uses (discovery, JWKS, token endpoint).
It checks what a real provider checks (client authentication, redirect URI, PKCE S256) and can
misbehave on purpose (ignore ``max_age``, sign with a foreign key, switch user) to show that the
console does not trust it blindly. The real provider is exercised by the end-to-end tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.testclient import TestClient

from acme_console import AcmeConfig, create_app

try:  # Authlib and Starlette's TestClient use httpx2 when it is installed.
    import httpx2 as http  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    import httpx as http  # type: ignore[no-redef,unused-ignore]

ISSUER = "http://127.0.0.1:8000"
BASE_URL = "http://127.0.0.1:8001"
CLIENT_ID = "acme-console"
CLIENT_SECRET = "acme-client-secret"
SESSION_SECRET = "f" * 64
REDIRECT_URI = f"{BASE_URL}/callback"


class FakeClock:
    """The console's injectable clock; starts at a whole second of real time so ID tokens
    (validated by Authlib against the real clock) are current."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ScriptedFreshID:
    clock: FakeClock
    sub: str = "user-123"
    email: str = "ada@example.com"
    honour_max_age: bool = True
    send_iss: bool = True
    sign_with_foreign_key: bool = False
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    last_authorization: dict[str, str] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    auth_time: int | None = None
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    # --- back channel -------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "end_session_endpoint": f"{ISSUER}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": self.send_iss,
        }

    def handle(self, request: http.Request) -> http.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return http.Response(200, json=self.metadata())
        if path == "/jwks":
            return http.Response(200, json=KeySet([self.key]).as_dict(private=False))
        if path == "/token" and request.method == "POST":
            return self.token(request)
        return http.Response(404)

    def token(self, request: http.Request) -> http.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.token_requests.append(form)
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return http.Response(401, json={"error": "invalid_client"})
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return http.Response(400, json={"error": "invalid_grant"})
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if challenge != grant["code_challenge"]:
            return http.Response(400, json={"error": "invalid_grant"})
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": grant["sub"],
            "aud": CLIENT_ID,
            "iat": issued,
            "exp": issued + 300,
            "auth_time": grant["auth_time"],
            "nonce": grant["nonce"],
            "sid": "sid-abc",
            "email": grant["email"],
            "acr": "urn:freshid:acr:pwd",
            "amr": ["pwd", "otp"],
        }
        key = RSAKey.generate_key(2048, {"kid": "k1"}) if self.sign_with_foreign_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return http.Response(
            200,
            json={
                "access_token": "at-" + secrets.token_urlsafe(8),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
        )

    # --- front channel ------------------------------------------------------------------

    def authorize(self, location: str) -> str:
        """Play the user at /authorize; return the redirect back to the console."""
        assert location.startswith(f"{ISSUER}/authorize?")
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        self.last_authorization = params
        assert params["client_id"] == CLIENT_ID
        assert params["response_type"] == "code"
        assert params["redirect_uri"] == REDIRECT_URI
        assert params["code_challenge_method"] == "S256"
        assert "openid" in params["scope"].split()
        now = int(self.clock())
        max_age = params.get("max_age")
        too_old = (
            self.auth_time is not None
            and max_age is not None
            and now - self.auth_time > int(max_age)
        )
        if self.auth_time is None or (too_old and self.honour_max_age):
            self.auth_time = now  # the user (re-)proves it's them
        code = secrets.token_urlsafe(12)
        self._codes[code] = {
            "redirect_uri": params["redirect_uri"],
            "code_challenge": params["code_challenge"],
            "nonce": params["nonce"],
            "sub": self.sub,
            "email": self.email,
            "auth_time": self.auth_time,
        }
        back = {"code": code, "state": params["state"]}
        if self.send_iss:
            back["iss"] = ISSUER
        return f"{params['redirect_uri']}?{urlencode(back)}"

    def deny(self, location: str) -> str:
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        back = {"error": "access_denied", "state": params["state"], "iss": ISSUER}
        return f"{params['redirect_uri']}?{urlencode(back)}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def provider(clock: FakeClock) -> ScriptedFreshID:
    return ScriptedFreshID(clock=clock)


@pytest.fixture
def client(provider: ScriptedFreshID, clock: FakeClock) -> TestClient:
    config = AcmeConfig(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=BASE_URL,
        session_secret=SESSION_SECRET,
    )
    app = create_app(config, clock=clock, transport=http.MockTransport(provider.handle))
    return TestClient(app, base_url=BASE_URL, follow_redirects=False)


def sign_in(client: TestClient, provider: ScriptedFreshID) -> None:
    start = client.get("/login")
    assert start.status_code == 302
    back = client.get(provider.authorize(start.headers["location"]))
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/"


def shown_key(text: str) -> str:
    match = re.search(r'id="api-key"[^>]* value="(acme_live_[0-9a-f]+)"', text)
    assert match, "no API key on the page"
    return match.group(1)


def session_payload(client: TestClient) -> dict[str, Any]:
    """The readable part of Starlette's signed session cookie."""
    value = client.cookies["acme_session"]
    data: dict[str, Any] = json.loads(base64.b64decode(value.split(".")[0]))
    return data


# --- sign-in --------------------------------------------------------------------------------


def test_authorization_request_carries_state_nonce_and_pkce(
    client: TestClient, provider: ScriptedFreshID
) -> None:
    location = client.get("/login").headers["location"]
    provider.authorize(location)
    params = provider.last_authorization
    assert params["scope"] == "openid email"
    assert len(params["state"]) >= 16
    assert len(params["nonce"]) >= 16
    assert len(params["code_challenge"]) == 43
    assert "max_age" not in params


def test_sign_in_shows_who_and_how_fresh(
    client: TestClient, provider: ScriptedFreshID, clock: FakeClock
) -> None:
    sign_in(client, provider)
    assert provider.token_requests[0]["grant_type"] == "authorization_code"
    clock.advance(125)
    page = client.get("/")
    assert page.status_code == 200
    assert "ada@example.com" in page.text
    assert "user-123" in page.text
    assert "sid-abc" in page.text
    assert "You last proved it's you 2 minutes 5 seconds ago" in page.text
    assert "urn:freshid:acr:pwd" in page.text
    assert "<code>pwd</code>, <code>otp</code>" in page.text
    assert "Reveal API key" in page.text
    assert "Needs a sign-in within the last 2 minutes" in page.text
    assert "Sign out" in page.text


def test_session_keeps_the_id_token_but_not_the_access_token(
    client: TestClient, provider: ScriptedFreshID
) -> None:
    sign_in(client, provider)
    payload = session_payload(client)
    assert payload["id_token"].count(".") == 2
    assert payload["user"]["sub"] == "user-123"
    assert "access_token" not in json.dumps(payload)
    assert "at-" not in json.dumps(payload)


def test_signed_in_login_goes_home(client: TestClient, provider: ScriptedFreshID) -> None:
    sign_in(client, provider)
    response = client.get("/login")
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_cancelled_sign_in(client: TestClient, provider: ScriptedFreshID) -> None:
    location = client.get("/login").headers["location"]
    response = client.get(provider.deny(location))
    assert response.status_code == 400
    assert "Sign-in cancelled" in response.text
    assert client.get("/").text.count("Sign in with FreshID") == 1


def test_forged_state_is_refused(client: TestClient, provider: ScriptedFreshID) -> None:
    location = client.get("/login").headers["location"]
    callback = provider.authorize(location)
    forged = callback.replace("state=", "state=x")
    response = client.get(forged)
    assert response.status_code == 400
    assert "could not be matched" in response.text
    assert provider.token_requests == []


def test_missing_iss_is_refused_when_advertised(
    client: TestClient, provider: ScriptedFreshID
) -> None:
    location = client.get("/login").headers["location"]
    callback = provider.authorize(location)
    without_iss = callback.split("&iss=")[0]
    response = client.get(without_iss)
    assert response.status_code == 400
    assert "wrong provider" in response.text
    assert provider.token_requests == []


def test_id_token_with_a_foreign_signature_is_refused(
    client: TestClient, provider: ScriptedFreshID
) -> None:
    provider.sign_with_foreign_key = True
    location = client.get("/login").headers["location"]
    response = client.get(provider.authorize(location))
    assert response.status_code == 502
    assert "could not be verified" in response.text
    assert "Sign in with FreshID" in client.get("/").text


def test_replayed_callback_is_refused(client: TestClient, provider: ScriptedFreshID) -> None:
    location = client.get("/login").headers["location"]
    callback = provider.authorize(location)
    assert client.get(callback).status_code == 303
    again = client.get(callback)
    assert again.status_code == 400  # the state was used up
    assert "Back to Acme Console" in again.text


# --- the sensitive action -------------------------------------------------------------------


def test_fresh_proof_reveals_the_key_directly(
    client: TestClient, provider: ScriptedFreshID, clock: FakeClock
) -> None:
    sign_in(client, provider)
    clock.advance(30)
    response = client.get("/api-key")
    assert response.status_code == 200
    assert "acme_live_" in response.text
    assert "Shown because you proved it's you 30 seconds ago" in response.text
    key = shown_key(response.text)
    assert key not in client.cookies["acme_session"]
    assert key not in json.dumps(session_payload(client))
    assert key in client.get("/api-key").text  # fixed for the session


def test_signed_out_reveal_signs_in_then_comes_back(
    client: TestClient, provider: ScriptedFreshID
) -> None:
    assert client.get("/api-key").headers["location"] == "/login"
    start = client.get("/login")
    back = client.get(provider.authorize(start.headers["location"]))
    assert back.headers["location"] == "/api-key"
    assert "acme_live_" in client.get("/api-key").text


def test_stale_proof_steps_up_and_keeps_the_session_key(
    client: TestClient, provider: ScriptedFreshID, clock: FakeClock
) -> None:
    sign_in(client, provider)
    first_key = shown_key(client.get("/api-key").text)
    clock.advance(200)
    assert "FreshID will ask you to prove it's you again" in client.get("/").text

    step_up = client.get("/api-key")
    assert step_up.status_code == 302
    clock.advance(5)  # the user takes a moment to prove it again
    callback = provider.authorize(step_up.headers["location"])
    assert provider.last_authorization["max_age"] == "120"
    assert provider.last_authorization["login_hint"] == "ada@example.com"
    back = client.get(callback)
    assert back.status_code == 303
    assert back.headers["location"] == "/api-key"
    clock.advance(7)
    reveal = client.get("/api-key")
    assert reveal.status_code == 200
    assert "Shown because you proved it's you 7 seconds ago" in reveal.text
    assert shown_key(reveal.text) == first_key


def test_provider_ignoring_max_age_does_not_reveal_the_key(
    client: TestClient, provider: ScriptedFreshID, clock: FakeClock
) -> None:
    sign_in(client, provider)
    clock.advance(600)
    provider.honour_max_age = False
    step_up = client.get("/api-key")
    back = client.get(provider.authorize(step_up.headers["location"]))
    assert back.status_code == 403
    assert "Fresh proof missing" in back.text
    assert "acme_live_" not in back.text
    # No redirect loop: the pending action was used up, the user is still signed in.
    assert "ada@example.com" in client.get("/").text


def test_step_up_as_someone_else_signs_out(
    client: TestClient, provider: ScriptedFreshID, clock: FakeClock
) -> None:
    sign_in(client, provider)
    clock.advance(600)
    provider.sub = "mallory"
    step_up = client.get("/api-key")
    back = client.get(provider.authorize(step_up.headers["location"]))
    assert back.status_code == 403
    assert "Different account" in back.text
    assert "acme_live_" not in back.text
    assert "Sign in with FreshID" in client.get("/").text


def test_cancelled_step_up_keeps_the_session(
    client: TestClient, provider: ScriptedFreshID, clock: FakeClock
) -> None:
    sign_in(client, provider)
    clock.advance(600)
    step_up = client.get("/api-key")
    response = client.get(provider.deny(step_up.headers["location"]))
    assert response.status_code == 400
    assert "Sign-in cancelled" in response.text
    assert "ada@example.com" in client.get("/").text


# --- logout ---------------------------------------------------------------------------------


def test_logout_ends_both_sessions(client: TestClient, provider: ScriptedFreshID) -> None:
    sign_in(client, provider)
    id_token = session_payload(client)["id_token"]
    home = client.get("/")
    csrf = home.text.split('name="csrf_token" value="')[1].split('"')[0]

    refused = client.post("/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert "ada@example.com" in client.get("/").text

    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/logout"
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["id_token_hint"] == id_token
    assert params["post_logout_redirect_uri"] == f"{BASE_URL}/"
    assert params["client_id"] == CLIENT_ID
    assert params["state"]

    back = client.get("/", params={"state": params["state"]})
    assert "You are signed out of Acme Console and FreshID" in back.text
    assert "Sign in with FreshID" in back.text
    assert "signed out of Acme Console and FreshID" not in client.get("/").text
