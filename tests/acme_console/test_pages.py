"""Acme Console without a running provider: configuration, the shared catalog, wording, and the
pages a signed-out visitor meets.

Where a test provokes a back-channel call, the configured issuer is a loopback port nobody listens
on, so the call really fails. The flows against a real FreshID are in ``test_flows.py``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from freshid_guard import load_policies_file
from starlette.testclient import TestClient

from acme_console import DEFAULT_POLICY_FILE, AcmeConfig, create_app
from acme_console.pages import section_of
from acme_console.wording import age, ago, duration, methods_text, proof_method, requirement
from freshid.freshness.policy import catalog
from tests.conftest import free_port

BASE_URL = "http://127.0.0.1:8001"
ISSUER = f"http://127.0.0.1:{free_port()}"  # nothing listens here
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


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(make_config()), base_url=BASE_URL, follow_redirects=False)


# --- configuration --------------------------------------------------------------------------


def test_config_derives_redirect_uris_from_base_url() -> None:
    config = make_config()
    assert config.redirect_uri == "http://127.0.0.1:8001/callback"
    assert config.post_logout_redirect_uri == "http://127.0.0.1:8001/"
    assert config.server_metadata_url == f"{ISSUER}/.well-known/openid-configuration"
    assert config.policy_file == DEFAULT_POLICY_FILE
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


@pytest.mark.parametrize(
    "changes",
    [
        {"issuer": "127.0.0.1:8000"},
        {"base_url": "ftp://acme.example"},
        {"base_url": "http://acme.example/?next=x"},
        {"session_secret": "short"},
        {"policy_file": Path("/no/such/actions.toml")},
        {"scope": "email"},
        {"client_id": ""},
    ],
)
def test_config_rejects_unusable_values(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_config(**changes)


# --- the shared catalog ---------------------------------------------------------------------


def test_catalog_names_the_three_actions() -> None:
    policies = load_policies_file(DEFAULT_POLICY_FILE)
    assert set(policies) == {"api_key.reveal", "billing.update", "account.delete"}
    reveal, billing, delete = (
        policies["api_key.reveal"],
        policies["billing.update"],
        policies["account.delete"],
    )
    assert (reveal.label, reveal.max_age, reveal.bind) == ("reveal an API key", 600, False)
    assert (billing.label, billing.max_age, billing.bind) == ("change billing details", 300, False)
    assert (delete.label, delete.max_age, delete.bind) == ("delete your Acme account", 120, True)
    assert delete.amr == {"hwk", "swk", "otp"}
    assert not reveal.amr and not billing.amr


def test_provider_reads_the_same_catalog() -> None:
    provider_side = catalog(str(DEFAULT_POLICY_FILE))
    for name, policy in load_policies_file(DEFAULT_POLICY_FILE).items():
        assert provider_side[name] == policy
    assert "account.method.add" in provider_side  # FreshID's own account actions stay


# --- wording --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "30 seconds"), (60, "1 minute"), (120, "2 minutes"), (600, "10 minutes"),
     (5400, "1 hour 30 minutes"), (3600, "1 hour")],
)  # fmt: skip
def test_duration(seconds: int, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-3, "just now"), (0, "just now"), (9, "just now"), (10, "10 seconds ago"),
     (59, "59 seconds ago"), (180, "3 min ago"), (719, "11 min ago"), (3600, "1 h ago"),
     (3900, "1 h 5 min ago"), (2 * 86400 + 5, "2 days ago")],
)  # fmt: skip
def test_ago(seconds: int, text: str) -> None:
    assert ago(seconds) == text


def test_age_is_never_negative() -> None:
    assert age(-5) == "0 seconds"
    assert age(1) == "1 second"


def test_requirements_read_as_sentences() -> None:
    policies = load_policies_file(DEFAULT_POLICY_FILE)
    assert requirement(policies["api_key.reveal"]) == "Needs a sign-in within 10 minutes"
    assert requirement(policies["billing.update"]) == "Needs a sign-in within 5 minutes"
    assert requirement(policies["account.delete"]) == (
        "Needs a passkey or authenticator code within 2 minutes, just for this action"
    )


@pytest.mark.parametrize(
    ("amr", "text", "banner"),
    [
        (("pwd",), "password", "with your password"),
        (("hwk", "user"), "passkey", "with your passkey"),
        (("swk", "user", "mfa"), "passkey", "with your passkey"),
        (("pwd", "otp", "mfa"), "password and authenticator code", None),
        (("email",), "emailed code", "with your emailed code"),
        ((), "an unstated method", ""),
    ],
)
def test_methods_in_words(amr: tuple[str, ...], text: str, banner: str | None) -> None:
    assert methods_text(amr) == text
    if banner is not None:
        assert proof_method(amr) == banner


def test_navigation_sections() -> None:
    assert section_of("/") == "/"
    assert section_of("/projects/rocket-launcher/keys/key-1") == "/"
    assert section_of("/billing/confirm") == "/billing"
    assert section_of("/account/delete/confirm") == "/account/delete"
    assert section_of("/callback") is None


# --- signed-out pages -----------------------------------------------------------------------


def test_signed_out_home_is_the_welcome_page(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Sign in with FreshID" in response.text
    assert 'href="/login"' in response.text
    assert "within 10 minutes" in response.text and "within 5 minutes" in response.text
    assert "Sign out" not in response.text
    assert '<html lang="en">' in response.text


@pytest.mark.parametrize(
    "path",
    ["/billing", "/activity", "/account/delete", "/projects/rocket-launcher",
     "/projects/rocket-launcher/keys/key-1", "/billing/confirm", "/account/delete/confirm"],
)  # fmt: skip
def test_signed_out_pages_go_to_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


@pytest.mark.parametrize("path", ["/billing", "/account/delete", "/account/new"])
def test_signed_out_posts_change_nothing(client: TestClient, path: str) -> None:
    response = client.post(path, data={"csrf_token": "x"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


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


def test_session_cookie_is_named_and_scoped(client: TestClient) -> None:
    response = client.get("/billing")  # remembers where to come back, so sets the cookie
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("acme_session=")
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
