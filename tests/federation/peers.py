"""Real upstream identity providers for the federation tests, and a browser that walks both sides.

- :class:`OidcPeer`: panva's ``oidc-provider`` (npm), started from ``tests/peers`` with Node on a
  free loopback port; clients register through its dynamic registration endpoint (RFC 7591), so
  each test's FreshID (on its own port) gets its own redirect URI.
- :class:`FedBrowser`: an httpx client with one cookie jar that follows redirects between FreshID
  and the upstream (both on 127.0.0.1) and stops at an HTML page or at the relying party's
  redirect URI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx

from tests.protocol.rp import Callback, Form, Page, _page

PEERS_DIR = Path(__file__).resolve().parent.parent / "peers"
SAML_SSO_URL = "https://idp.saml.test/sso"
"""The in-process SAML IdP's endpoint (:mod:`tests.federation.saml_idp`): nothing listens there;
the browser stops and the test answers for the IdP."""


def node_ready() -> str | None:
    """Why the Node peer cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PEERS_DIR / "node_modules" / "oidc-provider").is_dir():
        return "run `npm ci` in tests/peers"
    return None


class OidcPeer:
    def __init__(self, accounts: dict[str, dict[str, Any]], *, ignore_prompt_login: bool) -> None:
        env = {
            **os.environ,
            "PEER_CONFIG": json.dumps(
                {"accounts": accounts, "ignore_prompt_login": ignore_prompt_login}
            ),
            "NODE_ENV": "test",
        }
        self.process = subprocess.Popen(
            ["node", "oidc_provider.mjs"],
            cwd=PEERS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        ready: list[str] = []

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                if line.startswith("READY "):
                    ready.append(line.split()[1])
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=20)
        if not ready:
            self.stop()
            raise RuntimeError("oidc-provider did not start")
        self.issuer = ready[0]

    def register(self, redirect_uri: str, **metadata: Any) -> tuple[str, str]:
        response = httpx.post(
            f"{self.issuer}/reg", json={"redirect_uris": [redirect_uri], **metadata}, timeout=10
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["client_id"], body["client_secret"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class FedBrowser:
    stop_at: str | tuple[str, ...]
    """Where the browser stops (nothing listens there): the relying party's redirect URI, and
    the in-process SAML IdP's endpoint."""
    http: httpx.Client
    on_redirect: Callable[[str], str] | None = None
    """Lets a test tamper with a redirect before it is followed (mix-up, state and nonce tests)."""

    @classmethod
    def make(cls, stop_at: str | tuple[str, ...]) -> FedBrowser:
        return cls(stop_at, httpx.Client(follow_redirects=False, timeout=15))

    def close(self) -> None:
        self.http.close()

    def _land(self, response: httpx.Response) -> Page | Callback:
        for _ in range(20):
            if response.status_code not in (301, 302, 303, 307, 308):
                return _page(response)
            location = urljoin(str(response.url), response.headers["location"])
            if self.on_redirect is not None:
                location = self.on_redirect(location)
            if location.startswith(self.stop_at):
                return Callback(location)
            response = self.http.get(location)
        raise AssertionError("redirect loop")

    def open(self, url: str) -> Page | Callback:
        return self._land(self.http.get(url))

    def submit(self, page: Page, form: Form, /, **values: str) -> Page | Callback:
        url = urljoin(page.url, form.action)
        return self._land(self.http.post(url, data={**form.fields, **values}))

    def post(self, url: str, data: dict[str, str]) -> Page | Callback:
        return self._land(self.http.post(url, data=data))


def replace_param(url: str, name: str, value: str) -> str:
    """``url`` with one query parameter changed (a tampering test's tool)."""
    parts = urlsplit(url)
    query = [(k, value if k == name else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))
