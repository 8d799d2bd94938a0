"""Hostile and malformed input at the authorization and token endpoints: always a clean
``invalid_request`` (an error page, an error redirect or a 400 JSON body), never a 500 (RFC 6749
§3.1 no repeated parameters, §5.2 errors)."""

from __future__ import annotations

import contextlib
import socket
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx

from tests.conftest import RunningServer
from tests.protocol.rp import Browser, Callback, RelyingParty

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _raw_status(server: RunningServer, head: bytes, body: bytes = b"") -> int | None:
    """Send bytes httpx would refuse to send (raw non-ASCII, an over-long request line); the
    answer's status, or None when the server closed the connection without one."""
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    headers = b"\r\nHost: " + parts.netloc.encode() + b"\r\nConnection: close"
    if body:
        headers += b"\r\nContent-Type: application/x-www-form-urlencoded"
        headers += b"\r\nContent-Length: " + str(len(body)).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        # The server may answer (and close) before reading everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + headers + b"\r\n\r\n" + body)
        try:
            status_line = sock.makefile("rb").readline()
        except ConnectionResetError:
            return None
    return int(status_line.split()[1]) if status_line else None


def _authorize_query(rp: RelyingParty, **overrides: str) -> str:
    """A valid request's query string, with ``overrides`` replacing or adding parameters."""
    query = dict(parse_qsl(rp.authorization_request().url.split("?", 1)[1]))
    return urlencode({**query, **overrides})


def _assert_refused(rp: RelyingParty, response: httpx.Response) -> None:
    """An error page (400, HTML, no redirect) or an error redirect to the client, never a 500."""
    assert response.status_code < 500, response.status_code
    if response.status_code == 303:
        location = response.headers["location"]
        assert location.startswith(rp.redirect_uri + "?")
        params = Callback(location).params
        assert params["error"] == "invalid_request" and "code" not in params
    else:
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        assert "location" not in response.headers


def test_authorize_refuses_duplicated_parameters(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    query = _authorize_query(rp)
    for name in ("client_id", "redirect_uri", "response_type", "state", "scope", "nonce"):
        value = next(p.split("=", 1)[1] for p in query.split("&") if p.startswith(name + "="))
        duplicated = f"{query}&{name}={value}"
        for response in (
            browser.http.get(f"{server.url}/authorize?{duplicated}"),
            browser.http.post(f"{server.url}/authorize", content=duplicated, headers=FORM),
        ):
            _assert_refused(rp, response)
            assert response.status_code == 400  # even the redirect URI cannot be trusted now


def test_authorize_refuses_bytes_that_are_not_utf8(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    query = _authorize_query(rp)
    for bad in ("%FF", "%C3%28", "%ED%A0%80", "%C0%AF"):
        response = browser.http.get(f"{server.url}/authorize?{query}&login_hint={bad}")
        _assert_refused(rp, response)
        response = browser.http.post(
            f"{server.url}/authorize", content=f"{query}&state=a{bad}", headers=FORM
        )
        _assert_refused(rp, response)
    status = _raw_status(server, b"GET /authorize?" + query.encode() + b"&state=\xff\xfe HTTP/1.1")
    assert status == 400
    body = query.encode() + b"&state=\xff"
    assert _raw_status(server, b"POST /authorize HTTP/1.1", body) == 400


def test_authorize_refuses_control_characters(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    for name in ("state", "nonce", "login_hint", "client_id", "redirect_uri"):
        for char in ("\x00", "\x01", "\x1b", "\x7f"):
            query = _authorize_query(rp, **{name: f"a{char}b"})
            _assert_refused(rp, browser.http.get(f"{server.url}/authorize?{query}"))
    # A control character in a parameter name is refused too.
    query = _authorize_query(rp) + "&" + quote("x\x00y") + "=1"
    _assert_refused(rp, browser.http.get(f"{server.url}/authorize?{query}"))


def test_authorize_refuses_oversized_values(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    # Over the protocol's own limit but under the parser's: an error redirect without the state.
    response = browser.http.get(f"{server.url}/authorize?{_authorize_query(rp, state='s' * 3000)}")
    _assert_refused(rp, response)
    assert response.status_code == 303
    assert "state" not in Callback(response.headers["location"]).params
    for name in ("state", "nonce", "login_hint", "claims", "max_age", "id_token_hint"):
        query = _authorize_query(rp, **{name: "9" * 9000})
        _assert_refused(rp, browser.http.get(f"{server.url}/authorize?{query}"))
    many = _authorize_query(rp) + "&" + urlencode({f"p{i}": "x" for i in range(100)})
    _assert_refused(rp, browser.http.get(f"{server.url}/authorize?{many}"))
    huge = _authorize_query(rp) + "&pad=" + "x" * 70_000
    response = browser.http.post(f"{server.url}/authorize", content=huge, headers=FORM)
    _assert_refused(rp, response)
    # A request line beyond what the HTTP server accepts is still not a 500.
    assert _raw_status(server, f"GET /authorize?{huge} HTTP/1.1".encode()) in (400, 414, None)


def _assert_token_invalid_request(response: httpx.Response) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "invalid_request"
    assert response.headers.get("cache-control") == "no-store"


def test_token_endpoint_answers_malformed_bodies_with_invalid_request(
    server: RunningServer, rp: RelyingParty
) -> None:
    base = "grant_type=authorization_code&code=abc&redirect_uri=" + quote(rp.redirect_uri, "")
    bodies = {
        "duplicated grant_type": f"{base}&grant_type=refresh_token",
        "duplicated code": f"{base}&code=abc",
        "not UTF-8": f"{base}&code_verifier=%FF%FE",
        "control character": f"{base}&code_verifier=a%00b",
        "oversized value": f"{base}&code_verifier={'v' * 9000}",
        "too many parameters": base + "&" + urlencode({f"p{i}": "x" for i in range(100)}),
        "oversized body": f"{base}&pad={'x' * 70_000}",
    }
    for name, body in bodies.items():
        response = rp.token_request(body.encode())
        assert response.status_code < 500, name
        _assert_token_invalid_request(response)
    assert _raw_status(server, b"POST /token HTTP/1.1", base.encode() + b"&state=\xff") == 400
    # A body that is not a form at all.
    response = rp.oauth.request(
        "POST",
        rp.metadata["token_endpoint"],
        json={"grant_type": "authorization_code"},
        withhold_token=True,
    )
    _assert_token_invalid_request(response)


def test_token_endpoint_with_a_wrong_client_secret_is_invalid_client(
    server: RunningServer, rp: RelyingParty
) -> None:
    body = {"grant_type": "refresh_token", "refresh_token": "whatever"}
    for auth in ((rp.client_id, "wrong-secret"), (rp.client_id, ""), ("no-such-client", "x")):
        response = rp.token_request(body, auth=httpx.BasicAuth(*auth))
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].lower().startswith("basic")
    response = rp.token_request(
        {**body, "client_id": rp.client_id, "client_secret": "wrong-secret"},
        auth=httpx.Auth(),  # client_secret_post, no header
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
