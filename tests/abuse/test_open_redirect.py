"""Open-redirect vectors against every place FreshID accepts a return address: ``redirect_uri``
at the authorization endpoint (GET and POST), ``post_logout_redirect_uri`` at the end-session
endpoint and its confirming POST, and the registration of either (RFC 9700 §4.1.3, §4.11; OIDC
RP-Initiated Logout §3). A refused address is never redirected to: FreshID shows its own 400 page
and sends no ``Location`` header at all."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
import pytest

from freshid.storage import clients as client_store
from tests.abuse.conftest import POST_LOGOUT_URI, REDIRECT_URI, SignedIn
from tests.conftest import RunningServer
from tests.protocol.rp import Browser, RelyingParty

VECTORS = (
    "//evil.example",
    "//evil.example/cb",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "\\/evil.example",
    "/%2F/evil.example",
    "%2F%2Fevil.example",
    "%2f%5cevil.example",
    "%5C%5Cevil.example",
    "http%3A%2F%2Fevil.example",
    "https://evil.example",
    "http://evil.example",
    "https://evil.example/cb",
    "https:evil.example",
    "https:/evil.example",
    "http:/\\evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "javascript://%0aalert(1)",
    "javascript:%2F%2F%0Aalert(1)",
    "jav&#x09;ascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    f"{REDIRECT_URI}@evil.example",
    REDIRECT_URI.replace("127.0.0.1:9", "127.0.0.1:9@evil.example"),
    REDIRECT_URI.replace("127.0.0.1", "127.0.0.1.evil.example"),
    f"https://evil.example#{REDIRECT_URI}",
    f"https://evil.example?{REDIRECT_URI}",
    f"{REDIRECT_URI}/../../evil.example",
    f"{REDIRECT_URI}%2F..%2F..%2Fevil.example",
    f"{REDIRECT_URI}%0d%0aLocation:%20https://evil.example",
    f"{REDIRECT_URI}%00https://evil.example",
    "//evil.example%00.127.0.0.1",
    "//evil%E3%80%82example",
    "https://evil.example\\@127.0.0.1:9/cb",
)


def _assert_no_redirect(response: httpx.Response, vector: str) -> None:
    assert response.status_code == 400, (vector, response.status_code)
    assert "location" not in response.headers, vector
    assert response.headers["content-type"].startswith("text/html"), vector
    # The refused address is not offered as a link either.
    assert "evil.example" not in response.text, vector


def test_redirect_uri_vectors_get_the_error_page(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for vector in VECTORS:
        query = urlencode(
            {"client_id": rp.client_id, "response_type": "code", "scope": "openid", "state": "s"}
            | {"redirect_uri": vector, "code_challenge": "c" * 43, "code_challenge_method": "S256"}
        )
        _assert_no_redirect(browser.http.get(f"{server.url}/authorize?{query}"), vector)
        post = browser.http.post(f"{server.url}/authorize", content=query, headers=form)
        _assert_no_redirect(post, vector)


def test_post_logout_redirect_uri_vectors_get_the_error_page(
    server: RunningServer, rp: RelyingParty, browser: Browser, signed_in: SignedIn
) -> None:
    page = browser.http.get(f"{server.url}/logout")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    for vector in VECTORS:
        for who in ({"client_id": rp.client_id}, {"id_token_hint": signed_in.tokens.id_token}):
            query = urlencode({**who, "post_logout_redirect_uri": vector, "state": "s"})
            _assert_no_redirect(browser.http.get(f"{server.url}/logout?{query}"), vector)
        confirm = browser.http.post(
            f"{server.url}/logout/confirm",
            data={
                "csrf_token": csrf.group(1),
                "confirm": "yes",
                "client_id": rp.client_id,
                "post_logout_redirect_uri": vector,
            },
        )
        _assert_no_redirect(confirm, vector)
    # Nothing above signed the user out; the registered address still works.
    query = urlencode({"client_id": rp.client_id, "post_logout_redirect_uri": POST_LOGOUT_URI})
    assert browser.http.get(f"{server.url}/logout?{query}").status_code == 200
    assert browser.session_cookie is not None


REGISTRATION_VECTORS = (
    "//evil.example/cb",
    "/\\evil.example",
    "\\\\evil.example",
    "/cb",
    "cb",
    "https:evil.example",
    "http:/\\evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,x",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "http://evil.example/cb",  # plain http off loopback
    "https://rp.example/cb#frag",
)


@pytest.mark.parametrize("vector", REGISTRATION_VECTORS)
def test_registration_refuses_unsafe_return_addresses(server: RunningServer, vector: str) -> None:
    with server.provider.db.write() as conn:
        with pytest.raises(ValueError):
            client_store.create(conn, "RP", [vector], server.clock.now())
        with pytest.raises(ValueError):
            client_store.create(
                conn, "RP", [REDIRECT_URI], server.clock.now(), post_logout_redirect_uris=[vector]
            )


@pytest.mark.parametrize(
    "vector", ["https://rp.example/cb\r\nSet-Cookie: x=1", "https://rp.example/c\tb"]
)
def test_registration_refuses_control_characters(server: RunningServer, vector: str) -> None:
    with server.provider.db.write() as conn, pytest.raises(ValueError):
        client_store.create(conn, "RP", [vector], server.clock.now())
