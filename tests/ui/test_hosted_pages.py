"""Hosted pages through real HTTP: CSRF, no account enumeration, throttling, headers, cookies."""

from __future__ import annotations

import re

import httpx
import pytest

from freshid.tokens.secrets import new_token
from tests.conftest import DEMO_PASSWORD, RunningServer

REDIRECT = "http://127.0.0.1:9/cb"


def _start(server: RunningServer, http: httpx.Client, client_id: str) -> tuple[str, str]:
    r = http.get(
        f"{server.url}/authorize",
        params={
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM",
            "code_challenge_method": "S256",
        },
    )
    assert r.status_code == 303
    page = http.get(f"{server.url}{r.headers['location']}")
    action = re.search(r'action="([^"]+/password)"', page.text).group(1)  # type: ignore[union-attr]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return f"{server.url}{action}", csrf


@pytest.fixture
def client_id(server: RunningServer) -> str:
    server.create_user("ada@example.com")
    return server.create_client(REDIRECT)[0]


def test_form_without_or_with_wrong_csrf_is_refused(server: RunningServer, client_id: str) -> None:
    with httpx.Client() as http:
        action, csrf = _start(server, http, client_id)
        for token in ("", new_token(), csrf[:-1] + ("A" if csrf[-1] != "A" else "B")):
            r = http.post(
                action,
                data={"csrf_token": token, "email": "ada@example.com", "password": DEMO_PASSWORD},
            )
            assert r.status_code == 403
            assert "Set-Cookie" not in r.headers or "freshid_session" not in r.headers["set-cookie"]
        ok = http.post(
            action, data={"csrf_token": csrf, "email": "ada@example.com", "password": DEMO_PASSWORD}
        )
        assert ok.status_code == 303


def test_interaction_is_bound_to_the_browser(server: RunningServer, client_id: str) -> None:
    with httpx.Client() as victim, httpx.Client() as attacker:
        action, csrf = _start(server, victim, client_id)
        r = attacker.post(
            action, data={"csrf_token": csrf, "email": "ada@example.com", "password": DEMO_PASSWORD}
        )
        assert r.status_code == 400 and "expired" in r.text


def test_unknown_user_and_wrong_password_look_the_same(
    server: RunningServer, client_id: str
) -> None:
    answers = []
    with httpx.Client() as http:
        for email in ("ada@example.com", "nobody@example.com"):
            action, csrf = _start(server, http, client_id)
            r = http.post(
                action, data={"csrf_token": csrf, "email": email, "password": "wrong-password"}
            )
            body = re.sub(r'value="[^"]*"', "", r.text).replace(email, "EMAIL")
            body = re.sub(r"/interaction/[^/\"]+", "/interaction/X", body)
            answers.append((r.status_code, body))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401


def test_throttle_answers_429_and_does_not_check_the_password(
    server: RunningServer, client_id: str
) -> None:
    limit = server.settings.throttle_per_account_ip
    with httpx.Client() as http:
        for _ in range(limit):
            action, csrf = _start(server, http, client_id)
            assert (
                http.post(
                    action,
                    data={
                        "csrf_token": csrf,
                        "email": "ada@example.com",
                        "password": "wrong-password",
                    },
                ).status_code
                == 401
            )
        action, csrf = _start(server, http, client_id)
        r = http.post(
            action, data={"csrf_token": csrf, "email": "ada@example.com", "password": DEMO_PASSWORD}
        )
        assert r.status_code == 429 and "Too many attempts" in r.text


def test_security_headers_and_cookie_flags(server: RunningServer, client_id: str) -> None:
    with httpx.Client() as http:
        r = http.get(
            f"{server.url}/authorize",
            params={
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": "openid",
            },
        )
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        # Plain-http loopback issuer: no Secure flag and no __Host- prefix (browsers would drop it).
        assert "secure" not in cookie and not cookie.startswith("__host-")


def test_error_page_never_500_on_garbage(server: RunningServer) -> None:
    with httpx.Client() as http:
        for query in (
            "client_id=%FF%FE",
            "client_id=a&client_id=b",
            "state=" + "a" * 9000,
            "client_id=%00",
        ):
            r = http.get(f"{server.url}/authorize?{query}")
            assert r.status_code == 400, query
            assert "text/html" in r.headers["content-type"]
        r = http.get(f"{server.url}/interaction/{'x' * 500}")
        assert r.status_code == 400
