"""Fixtures for abuse tests of the sign-in methods: FreshID on ``http://localhost:<port>`` (a
domain, so passkeys are offered) with real SMTP, a registered relying party and an httpx browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import IdP, running_idp
from tests.protocol.rp import Browser, RelyingParty

REDIRECT_URI = "http://127.0.0.1:9/cb"


@pytest.fixture
def idp(database_url: str) -> Iterator[IdP]:
    with running_idp(database_url) as running:
        yield running


@pytest.fixture
def app(idp: IdP) -> Iterator[RelyingParty]:
    client_id, secret = idp.create_client(REDIRECT_URI)
    rp = RelyingParty(idp.url, client_id, secret, REDIRECT_URI)
    yield rp
    rp.close()


@pytest.fixture
def user_agent(idp: IdP) -> Iterator[Browser]:
    browser = Browser(idp.url)
    yield browser
    browser.close()
