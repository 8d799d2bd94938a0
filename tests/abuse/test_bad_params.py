"""Oversized, duplicated, non-UTF-8 and control-character parameters at every endpoint that reads
parameters: always a clean 400 whose ``error`` is ``invalid_request`` and whose
``error_description`` uses only the characters RFC 6749 §5.2 allows (%x20-21 / %x23-5B /
%x5D-7E), in the JSON body of the back-channel endpoints and on the error page of the
front-channel ones; never a 500, never the input echoed back."""

from __future__ import annotations

import contextlib
import html
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from tests.abuse.conftest import SignedIn
from tests.conftest import RunningServer
from tests.protocol.rp import Browser, Page, RelyingParty

DESCRIPTION = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]*$")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    base: dict[str, str]
    """A plausible request's parameters, the bad one is added to or replaces one of them."""
    json: bool


def bad_inputs(base: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(what, query string) pairs, each malformed in exactly one way."""
    good = urlencode(base)
    first = next(iter(base))
    yield "duplicated parameter", f"{good}&{urlencode({first: base[first]})}"
    yield "duplicated unknown parameter", f"{good}&x=1&x=1"
    yield "oversized value", f"{good}&pad={'v' * 9000}"
    yield "oversized name", f"{good}&{'n' * 200}=1"
    yield "too many parameters", f"{good}&" + urlencode({f"p{i}": "x" for i in range(100)})
    for bad in ("%FF", "%C3%28", "%ED%A0%80", "%C0%AF", "%F4%90%80%80"):
        yield f"not UTF-8 {bad}", f"{good}&x=a{bad}"
    for char in ("%00", "%01", "%08", "%0B", "%1B", "%7F"):
        yield f"control character {char}", f"{good}&x=a{char}b"
    yield "control character in a name", f"{good}&a%00b=1"


def _check_json(response: httpx.Response, what: str) -> None:
    assert response.status_code == 400, (what, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/json"), what
    body = response.json()
    assert body["error"] == "invalid_request", (what, body)
    assert DESCRIPTION.match(body.get("error_description", "")), (what, body)
    assert response.headers.get("cache-control") == "no-store", what


def _check_page(response: httpx.Response, what: str) -> None:
    assert response.status_code == 400, (what, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("text/html"), what
    assert "location" not in response.headers, what
    assert "<code>invalid_request</code>" in response.text, what
    lead = re.search(r'<p class="lead">(.*?)</p>', response.text, re.S)
    assert lead is not None, what
    assert DESCRIPTION.match(html.unescape(lead.group(1).strip())), (what, lead.group(1))


def _endpoints(server: RunningServer, rp: RelyingParty, browser: Browser) -> list[Endpoint]:
    landing = browser.open(rp.authorization_request().url)
    assert isinstance(landing, Page) and landing.kind == "login"
    iid = urlsplit(landing.url).path.rsplit("/", 1)[-1]
    csrf = landing.form("/password").fields["csrf_token"]
    authorize = dict(parse_qsl(urlsplit(rp.authorization_request().url).query))
    back = {"client_id": rp.client_id, "client_secret": "s"}
    page = {"csrf_token": csrf}
    return [
        Endpoint("authorize GET", "GET", "/authorize", authorize, json=False),
        Endpoint("authorize POST", "POST", "/authorize", authorize, json=False),
        Endpoint("token", "POST", "/token", {"grant_type": "refresh_token", **back}, json=True),
        Endpoint("introspect", "POST", "/introspect", {"token": "t", **back}, json=True),
        Endpoint("revoke", "POST", "/revoke", {"token": "t", **back}, json=True),
        Endpoint("logout GET", "GET", "/logout", {"client_id": rp.client_id}, json=False),
        Endpoint("logout POST", "POST", "/logout", {"client_id": rp.client_id}, json=False),
        Endpoint("logout confirm", "POST", "/logout/confirm", {**page, "confirm": "yes"}, False),
        Endpoint(
            "password", "POST", f"/interaction/{iid}/password", {**page, "email": "a@b.c"}, False
        ),
        Endpoint(
            "email send",
            "POST",
            f"/interaction/{iid}/email/send",
            {**page, "email": "a@b.c"},
            False,
        ),
        Endpoint(
            "email verify", "POST", f"/interaction/{iid}/email/verify", {**page, "code": "1"}, False
        ),
        Endpoint("totp", "POST", f"/interaction/{iid}/totp", {**page, "code": "123456"}, False),
        Endpoint("recovery", "POST", f"/interaction/{iid}/recovery", {**page, "code": "x"}, False),
        Endpoint(
            "passkey", "POST", f"/interaction/{iid}/passkey", {**page, "credential": "{}"}, False
        ),
        Endpoint("switch user", "POST", f"/interaction/{iid}/switch", page, json=False),
    ]


def test_every_endpoint_answers_bad_parameters_with_a_clean_400(
    server: RunningServer, rp: RelyingParty, browser: Browser
) -> None:
    for endpoint in _endpoints(server, rp, browser):
        for what, query in bad_inputs(endpoint.base):
            label = f"{endpoint.name}: {what}"
            if endpoint.method == "GET":
                response = browser.http.get(f"{server.url}{endpoint.path}?{query}")
            else:
                response = browser.http.post(
                    f"{server.url}{endpoint.path}", content=query.encode(), headers=FORM
                )
            (_check_json if endpoint.json else _check_page)(response, label)
        if endpoint.method == "POST":
            huge = urlencode(endpoint.base) + "&pad=" + "x" * 70_000
            response = browser.http.post(f"{server.url}{endpoint.path}", content=huge, headers=FORM)
            (_check_json if endpoint.json else _check_page)(response, f"{endpoint.name}: 70 kB")
            not_a_form = browser.http.post(f"{server.url}{endpoint.path}", json=endpoint.base)
            (_check_json if endpoint.json else _check_page)(not_a_form, f"{endpoint.name}: JSON")


def _raw(server: RunningServer, request_line: bytes, body: bytes = b"") -> int | None:
    """Send bytes httpx refuses to send; the status, or None if the server just closed."""
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    head = request_line + b"\r\nHost: " + parts.netloc.encode() + b"\r\nConnection: close"
    if body:
        head += b"\r\nContent-Type: application/x-www-form-urlencoded"
        head += b"\r\nContent-Length: " + str(len(body)).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + b"\r\n\r\n" + body)
        try:
            line = sock.makefile("rb").readline()
        except ConnectionResetError:
            return None
    return int(line.split()[1]) if line else None


@pytest.mark.parametrize(
    "request_line, body",
    [
        (b"GET /authorize?client_id=\xff\xfe HTTP/1.1", b""),
        (b"GET /logout?client_id=\xc3\x28 HTTP/1.1", b""),
        (b"POST /token HTTP/1.1", b"grant_type=refresh_token&refresh_token=\xff"),
        (b"POST /introspect HTTP/1.1", b"token=\xff\xfe"),
        (b"POST /revoke HTTP/1.1", b"token=\x80"),
        (b"POST /logout/confirm HTTP/1.1", b"csrf_token=\xff"),
        (b"POST /authorize HTTP/1.1", b"client_id=a\x00b"),
    ],
)
def test_raw_bytes_that_are_not_utf8_are_a_400(
    server: RunningServer, request_line: bytes, body: bytes
) -> None:
    assert _raw(server, request_line, body) == 400


def test_userinfo_ignores_its_body_but_never_fails_on_it(
    server: RunningServer, signed_in: SignedIn
) -> None:
    auth = {"Authorization": f"Bearer {signed_in.tokens.access_token}"}
    for _, query in bad_inputs({"a": "1"}):
        r = httpx.post(f"{server.url}/userinfo", content=query, headers={**FORM, **auth})
        assert r.status_code == 200, (query[:40], r.status_code)
