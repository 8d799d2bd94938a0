"""Fixtures for the end-to-end protocol suite: one server per test, a user, a relying party and a
browser on it, and a reader for the events table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from freshid.storage import users as user_store
from freshid.storage.tables import events as events_table
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.rp import Browser, RelyingParty

REDIRECT_URI = "http://127.0.0.1:9/cb"
ADA = "ada@example.com"
GRACE = "grace@example.com"


@dataclass(frozen=True)
class Event:
    type: str
    user_id: str | None
    session_id: str | None
    client_id: str | None
    data: dict[str, Any]


EventReader = Callable[[str], list[Event]]
RPFactory = Callable[..., RelyingParty]
UserFactory = Callable[[str], str]
BrowserFactory = Callable[..., Browser]


_DEMO_HASHES: dict[tuple[int, int, int], str] = {}


@pytest.fixture
def make_user(server: RunningServer) -> UserFactory:
    """``server.create_user`` with the demo password, hashed once per run rather than per user:
    argon2id is slow on purpose, and every user here has the same password."""

    def make(email: str) -> str:
        s = server.settings
        key = (s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)
        if key not in _DEMO_HASHES:
            _DEMO_HASHES[key] = server.provider.password.hash_sync(DEMO_PASSWORD)
        with server.provider.db.write() as conn:
            return user_store.create(conn, email, _DEMO_HASHES[key], server.clock.now()).id

    return make


@pytest.fixture
def ada(make_user: UserFactory) -> str:
    return make_user(ADA)


@pytest.fixture
def make_rp(server: RunningServer) -> Iterator[RPFactory]:
    """Register a client (``create_client`` keywords) and return an RP for it."""
    made: list[RelyingParty] = []

    def make(
        redirect_uri: str = REDIRECT_URI, auth_method: str | None = None, **kwargs: Any
    ) -> RelyingParty:
        client_id, secret = server.create_client(redirect_uri, **kwargs)
        rp = RelyingParty(server.url, client_id, secret, redirect_uri, auth_method=auth_method)
        made.append(rp)
        return rp

    yield make
    for rp in made:
        rp.close()


@pytest.fixture
def rp(make_rp: RPFactory) -> RelyingParty:
    return make_rp(post_logout_redirect_uris=["http://127.0.0.1:9/bye"])


@pytest.fixture
def make_browser(server: RunningServer) -> Iterator[BrowserFactory]:
    made: list[Browser] = []

    def make(cookies: dict[str, str] | None = None) -> Browser:
        browser = Browser(server.url, cookies)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        browser.close()


@pytest.fixture
def browser(make_browser: BrowserFactory) -> Browser:
    return make_browser()


@pytest.fixture
def events(server: RunningServer) -> EventReader:
    """The events of one type, oldest first."""

    def read(type_: str) -> list[Event]:
        with server.provider.db.read() as conn:
            rows = conn.execute(
                sa.select(events_table)
                .where(events_table.c.type == type_)
                .order_by(events_table.c.id)
            ).all()
        return [Event(r.type, r.user_id, r.session_id, r.client_id, dict(r.data)) for r in rows]

    return read
