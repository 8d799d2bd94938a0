"""Authorization-code and refresh flows over real HTTP, for tests that run several nodes.

A node is anything with a base ``url``: an in-process :class:`tests.conftest.RunningServer`
(``tests/scale``) or a ``freshid serve`` OS process (``tests/faults``). Clients are confidential
(``(client_id, secret)``, sent with HTTP Basic) and registered with :data:`REDIRECT_URI`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from base64 import urlsafe_b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import httpx

from tests.protocol.rp import Browser, Callback, Page

REDIRECT_URI = "http://127.0.0.1:9/cb"


class Node(Protocol):
    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class Code:
    code: str
    verifier: str
    nonce: str


def authorization_request(node: Node, client_id: str, **extra: str) -> tuple[str, str, str]:
    """An authorization URL on ``node`` (PKCE S256, a nonce, offline_access); with its verifier
    and nonce."""
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    challenge = urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    query = {
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid offline_access",
        "state": secrets.token_urlsafe(8),
        "nonce": nonce,
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{node.url}/authorize?{urlencode(query)}", verifier, nonce


def code_from(callback: Callback, issuer: str) -> str:
    """The code of an authorization response, after checking where it went and who sent it."""
    assert callback.base == REDIRECT_URI, callback.url
    assert callback.params["iss"] == issuer  # RFC 9207: the shared issuer, on any node
    return callback.params["code"]


def login_page(browser: Browser, node: Node, client_id: str) -> tuple[Page, str, str]:
    """Open an authorization request on ``node`` with no session: the sign-in page it shows,
    with the request's verifier and nonce."""
    url, verifier, nonce = authorization_request(node, client_id)
    page = browser.open(url)
    assert isinstance(page, Page) and page.kind == "login", page
    return page, verifier, nonce


def sign_in(
    node: Node, client_id: str, email: str, password: str, issuer: str
) -> tuple[Browser, Code]:
    """A full interactive sign-in on ``node``; the browser (with its session) and the code."""
    browser = Browser(node.url)
    page, verifier, nonce = login_page(browser, node, client_id)
    callback = browser.submit(page.form("/password"), email=email, password=password)
    assert isinstance(callback, Callback), callback
    return browser, Code(code_from(callback, issuer), verifier, nonce)


def silent_code(browser: Browser, node: Node, client_id: str, issuer: str) -> Code:
    """A new code from the browser's session, without UI (``prompt=none``)."""
    url, verifier, nonce = authorization_request(node, client_id, prompt="none")
    landing = browser.open(url)
    assert isinstance(landing, Callback), landing
    return Code(code_from(landing, issuer), verifier, nonce)


def token(node: Node, client: tuple[str, str], timeout: float = 30, **body: str) -> httpx.Response:
    return httpx.post(f"{node.url}/token", data=body, auth=client, timeout=timeout)


def redeem(node: Node, client: tuple[str, str], code: Code, timeout: float = 30) -> httpx.Response:
    return token(
        node,
        client,
        timeout,
        grant_type="authorization_code",
        code=code.code,
        redirect_uri=REDIRECT_URI,
        code_verifier=code.verifier,
    )


def refresh(
    node: Node, client: tuple[str, str], refresh_token: str, timeout: float = 30
) -> httpx.Response:
    return token(node, client, timeout, grant_type="refresh_token", refresh_token=refresh_token)


def userinfo(node: Node, access_token: str) -> httpx.Response:
    return httpx.get(f"{node.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def race(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls in threads released at the same instant; their answers, in call order."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def one_winner(answers: list[httpx.Response]) -> httpx.Response:
    """Exactly one 200; every other answer is ``invalid_grant``."""
    winners = [a for a in answers if a.status_code == 200]
    losers = [a for a in answers if a.status_code != 200]
    assert len(winners) == 1, [(a.status_code, a.text[:100]) for a in answers]
    for loser in losers:
        assert loser.status_code == 400 and loser.json()["error"] == "invalid_grant", loser.text
    return winners[0]
