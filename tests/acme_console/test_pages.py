"""Acme Console without a provider: configuration, freshness arithmetic, signed-out pages.

Everything here runs with no FreshID at all; back-channel calls, where a test provokes one, go
to a transport that refuses to connect. The sign-in flows against a scripted provider are in
``test_flows.py``; the lead's end-to-end tests run them against the real one.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from acme_console import AcmeConfig, create_app
from acme_console.freshness import (
    format_duration,
    needs_step_up,
    proof_age_seconds,
    proof_age_text,
)

try:  # Authlib and Starlette's TestClient use httpx2 when it is installed.
    import httpx2 as http  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    import httpx as http  # type: ignore[no-redef,unused-ignore]

BASE_URL = "http://127.0.0.1:8001"
ISSUER = "http://127.0.0.1:8000"
TEMPLATES = Path(__file__).resolve().parents[2] / "examples" / "acme_console" / "templates"


def make_config(**changes: object) -> AcmeConfig:
    config = AcmeConfig(
        issuer=ISSUER,
        client_id="acme-console",
        client_secret="not-a-real-secret",
        base_url=BASE_URL,
        session_secret="0123456789abcdef" * 4,
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def refuse(request: http.Request) -> http.Response:
    raise http.ConnectError("provider is not running", request=request)


@pytest.fixture
def client() -> TestClient:
    app = create_app(make_config(), transport=http.MockTransport(refuse))
    return TestClient(app, base_url=BASE_URL, follow_redirects=False)


# --- configuration --------------------------------------------------------------------------


def test_config_derives_redirect_uris_from_base_url() -> None:
    config = make_config()
    assert config.redirect_uri == "http://127.0.0.1:8001/callback"
    assert config.post_logout_redirect_uri == "http://127.0.0.1:8001/"
    assert config.server_metadata_url == "http://127.0.0.1:8000/.well-known/openid-configuration"
    assert config.reveal_max_age == 120
    assert config.scope == "openid email"
    assert config.https_only is False


def test_config_keeps_a_base_path_and_detects_https() -> None:
    config = make_config(base_url="https://acme.example/console")
    assert config.redirect_uri == "https://acme.example/console/callback"
    assert config.post_logout_redirect_uri == "https://acme.example/console/"
    assert config.https_only is True


def test_config_repr_hides_secrets() -> None:
    text = repr(make_config())
    assert "not-a-real-secret" not in text
    assert "0123456789abcdef" not in text


def test_config_is_frozen() -> None:
    config = make_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.issuer = "http://evil.example"  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes",
    [
        {"issuer": "127.0.0.1:8000"},
        {"base_url": "ftp://acme.example"},
        {"base_url": "http://acme.example/?next=x"},
        {"session_secret": "short"},
        {"reveal_max_age": 0},
        {"scope": "email"},
        {"client_id": ""},
    ],
)
def test_config_rejects_unusable_values(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_config(**changes)


# --- freshness arithmetic -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (61, "1 minute 1 second"),
        (120, "2 minutes"),
        (125, "2 minutes 5 seconds"),
        (3_600, "1 hour"),
        (3_725, "1 hour 2 minutes 5 seconds"),
        (90_061, "1 day 1 hour 1 minute 1 second"),
        (-5, "0 seconds"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_proof_age_text_reads_minutes_and_seconds() -> None:
    assert proof_age_text(1_000, 1_125) == "You last proved it's you 2 minutes 5 seconds ago"
    assert proof_age_text(1_000, 1_000.9) == "You last proved it's you 0 seconds ago"


def test_proof_age_never_goes_negative() -> None:
    # A provider clock a little ahead of ours must not produce "-3 seconds ago".
    assert proof_age_seconds(1_003, 1_000) == 0


@pytest.mark.parametrize(
    ("auth_time", "now", "expected"),
    [
        (1_000, 1_000, False),  # just proved it
        (1_000, 1_119, False),
        (1_000, 1_120, False),  # exactly max_age old still counts (OIDC: "greater than")
        (1_000, 1_121, True),
        (1_000, 5_000, True),
        (None, 1_000, True),  # no auth_time proves nothing
        (1_050, 1_000, False),  # within clock skew
        (2_000, 1_000, True),  # far in the future: not believable
    ],
)
def test_needs_step_up(auth_time: int | None, now: int, expected: bool) -> None:
    assert needs_step_up(auth_time, now, 120) is expected


# --- signed-out pages -----------------------------------------------------------------------


def test_signed_out_home_renders_sign_in(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Sign in with FreshID" in response.text
    assert 'href="/login"' in response.text
    assert 'href="/static/acme.css"' in response.text
    assert "Sign out" not in response.text
    assert '<html lang="en">' in response.text


def test_pages_send_security_headers(client: TestClient) -> None:
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "style-src 'self'" in csp
    assert "script-src" not in csp  # no scripts at all, default-src 'none' covers them
    assert f"form-action 'self' {ISSUER}" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_stylesheet_is_served(client: TestClient) -> None:
    response = client.get("/static/acme.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "no-store" not in response.headers.get("cache-control", "")


def test_templates_have_no_inline_scripts_or_styles() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert "<script" not in text, template.name
        assert "<style" not in text, template.name
        assert not re.search(r"\sstyle=", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name


def test_api_key_signed_out_goes_to_sign_in(client: TestClient) -> None:
    response = client.get("/api-key")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_session_cookie_is_named_and_scoped(client: TestClient) -> None:
    response = client.get("/api-key")  # remembers the pending action, so sets the cookie
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("acme_session=")
    assert "freshid_" not in set_cookie
    assert "httponly" in set_cookie.lower()
    assert "samesite=lax" in set_cookie.lower()
    assert "secure" not in set_cookie.lower()  # base_url is http


def test_sign_in_with_provider_down_shows_a_page_not_a_500(client: TestClient) -> None:
    response = client.get("/login")
    assert response.status_code == 502
    assert "FreshID is unavailable" in response.text
    assert 'href="/"' in response.text


def test_cancelled_sign_in_shows_the_error_and_a_way_home(client: TestClient) -> None:
    response = client.get(
        "/callback",
        params={"error": "access_denied", "error_description": "<b>User said no</b>"},
    )
    assert response.status_code == 400
    assert "Sign-in cancelled" in response.text
    assert "access_denied" in response.text
    assert "&lt;b&gt;User said no&lt;/b&gt;" in response.text  # escaped, never markup
    assert 'href="/"' in response.text


def test_callback_with_another_issuer_is_rejected(client: TestClient) -> None:
    response = client.get(
        "/callback", params={"code": "c", "state": "s", "iss": "http://evil.example"}
    )
    assert response.status_code == 400
    assert "wrong provider" in response.text


def test_logout_without_csrf_token_is_refused(client: TestClient) -> None:
    response = client.post("/logout", data={"csrf_token": "guess"})
    assert response.status_code == 403
    assert "Request expired" in response.text
