"""A plain OAuth 2.0 upstream (GitHub-like: no ID token, a userinfo call, verified addresses from
``/user/emails``): it can sign a user in, but never proves a fresh authentication.

The upstream here is a small Starlette app standing in for GitHub's three endpoints; it checks the
client's credentials and the PKCE verifier like the real one.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from freshid.federation import connections as connection_store
from tests.conftest import RunningServer, free_port, serve_in_thread
from tests.federation.peers import FedBrowser
from tests.protocol.conftest import EventReader, RPFactory
from tests.protocol.rp import Callback, Page

pytestmark = pytest.mark.e2e
CLIENT_ID, CLIENT_SECRET = "gh-client", "gh-secret"


@pytest.fixture(scope="module")
def github() -> Iterator[str]:
    codes: dict[str, str] = {}

    async def authorize(request: Request) -> Response:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID and q["code_challenge_method"] == "S256"
        assert "prompt" not in q and "nonce" not in q  # not OpenID Connect
        code = secrets.token_urlsafe(16)
        codes[code] = q["code_challenge"]
        query = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

    async def token(request: Request) -> Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.form()
        challenge = codes.pop(str(form["code"]), None)
        digest = hashlib.sha256(str(form["code_verifier"]).encode()).digest()
        if (
            request.headers.get("authorization") != f"Basic {expected}"
            or challenge is None
            or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse({"access_token": "gho_test", "token_type": "bearer"})

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == "Bearer gho_test"

    async def user(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({}, status_code=401)
        return JSONResponse({"id": 4242, "login": "octo", "email": None})

    async def emails(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({}, status_code=401)
        return JSONResponse(
            [
                {"email": "old@corp.example", "primary": False, "verified": True},
                {"email": "octo@corp.example", "primary": True, "verified": True},
            ]
        )

    port = free_port()
    app = Starlette(
        routes=[
            Route("/login/oauth/authorize", authorize),
            Route("/login/oauth/access_token", token, methods=["POST"]),
            Route("/user", user),
            Route("/user/emails", emails),
        ]
    )
    stop = serve_in_thread(app, port)
    yield f"http://127.0.0.1:{port}"
    stop()


def _connect(server: RunningServer, github: str) -> None:
    with server.provider.db.write() as conn:
        connection_store.create(
            conn,
            id="github",
            kind="oauth2",
            name="GitHub",
            config={
                "client_id": CLIENT_ID,
                "authorization_endpoint": f"{github}/login/oauth/authorize",
                "token_endpoint": f"{github}/login/oauth/access_token",
                "userinfo_endpoint": f"{github}/user",
                "emails_endpoint": f"{github}/user/emails",
                "subject_claim": "id",
                "scopes": ["read:user", "user:email"],
            },
            client_secret=CLIENT_SECRET,
            now=server.clock.now(),
            jit=True,
        )


def test_sign_in_but_never_a_fresh_proof(
    server: RunningServer,
    github: str,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    _connect(server, github)
    rp = make_rp()
    request = rp.authorization_request()
    login = fed_browser.open(request.url)
    assert isinstance(login, Page)
    done = fed_browser.submit(login, login.form("/fed/github"))
    assert isinstance(done, Callback), done
    claims = rp.redeem(request, done).id_claims
    assert claims["amr"] == ["fed"]
    created = events("authentication.succeeded")[-1]
    assert created.data["upstream"]["subject"] == "4242"
    assert created.data["upstream"]["auth_time"] is None

    # A step-up: GitHub is not offered, it cannot say when the user last authenticated.
    step_up = fed_browser.open(rp.authorization_request(prompt="login").url)
    assert isinstance(step_up, Page) and step_up.title.startswith("Confirm it")
    assert not any(f.action.endswith("/fed/github") for f in step_up.forms)

    # Nor does it count for a sign-in that demands a fresh proof.
    fresh = FedBrowser.make(fed_browser.stop_at)
    try:
        login = fresh.open(rp.authorization_request(prompt="login").url)
        assert isinstance(login, Page)
        refused = fresh.submit(login, login.form("/fed/github"))
    finally:
        fresh.close()
    assert isinstance(refused, Page) and refused.status == 401
    assert "can't confirm a recent sign-in" in refused.html.replace("&#39;", "'")
    failed = events("authentication.failed")[-1]
    assert failed.data["reason"] == "upstream_cannot_prove_freshness"
