"""Fixtures for the abuse suite: one FreshID per backend per module (mail kept in its in-memory
outbox, so emailed codes cost no SMTP round trip), a user and a client per test, and a signed-in
browser with the tokens of one code flow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from freshid.storage import users as user_store
from tests.conformance.servers import backend_url, module_server
from tests.conftest import BACKENDS, DEMO_PASSWORD, RunningServer
from tests.protocol.rp import Browser, RelyingParty, Tokens, sign_in

REDIRECT_URI = "http://127.0.0.1:9/cb"
POST_LOGOUT_URI = "http://127.0.0.1:9/bye"


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: str | None,
) -> Iterator[RunningServer]:
    url = backend_url(request.param, tmp_path_factory, pg_database)
    yield from module_server(url, mail_backend="outbox")


_HASHES: dict[int, str] = {}


def new_user(server: RunningServer, email: str | None = None) -> tuple[str, str]:
    """A user with the demo password: (email, subject). The hash is computed once per server."""
    key = id(server)
    if key not in _HASHES:
        _HASHES[key] = server.provider.password.hash_sync(DEMO_PASSWORD)
    email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    with server.provider.db.write() as conn:
        return email, user_store.create(conn, email, _HASHES[key], server.clock.now()).id


@pytest.fixture
def user(server: RunningServer) -> tuple[str, str]:
    return new_user(server)


@pytest.fixture
def rp(server: RunningServer) -> Iterator[RelyingParty]:
    client_id, secret = server.create_client(
        REDIRECT_URI, post_logout_redirect_uris=[POST_LOGOUT_URI]
    )
    relying_party = RelyingParty(server.url, client_id, secret, REDIRECT_URI)
    yield relying_party
    relying_party.close()


@pytest.fixture
def browser(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server.url)
    yield b
    b.close()


@dataclass(frozen=True)
class SignedIn:
    email: str
    sub: str
    tokens: Tokens


@pytest.fixture
def signed_in(user: tuple[str, str], rp: RelyingParty, browser: Browser) -> SignedIn:
    """``browser`` holds a session for ``user``; the tokens of that code flow."""
    email, sub = user
    return SignedIn(email, sub, sign_in(rp, browser, email, DEMO_PASSWORD))
