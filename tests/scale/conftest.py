"""Two FreshID nodes on one PostgreSQL database (PostgreSQL only: SQLite is one machine's store).

Each node is its own :class:`~freshid.provider.Provider` and app on its own loopback port, as two
``freshid serve`` processes would be; both are configured with the same issuer (node A's URL), so
tokens from either say the same ``iss``. Requests go to each node's own port.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from freshid.app import create_app
from freshid.clock import OffsetClock
from freshid.provider import Provider
from freshid.settings import load_settings
from freshid.storage import users as user_store
from tests.conftest import (
    DEMO_PASSWORD,
    PG_URL,
    RunningServer,
    _truncate,
    free_port,
    serve_in_thread,
)
from tests.flows import REDIRECT_URI


@dataclass(frozen=True)
class Cluster:
    issuer: str
    a: RunningServer
    b: RunningServer

    @property
    def nodes(self) -> tuple[RunningServer, RunningServer]:
        return self.a, self.b


@pytest.fixture(scope="module")
def cluster(pg_database: str | None) -> Iterator[Cluster]:
    if not PG_URL or pg_database is None:
        pytest.skip("scale-out needs PostgreSQL: set FRESHID_TEST_POSTGRES_URL")
    _truncate(pg_database)
    port_a, port_b = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port_a}"
    nodes, stops = [], []
    for port in (port_a, port_b):  # one after the other: A creates the signing key, B loads it
        settings = load_settings(environ={}, database_url=pg_database, port=port, issuer=issuer)
        clock = OffsetClock()
        provider = Provider(settings, clock)
        app = create_app(settings, provider=provider)
        stops.append(serve_in_thread(app, port))
        nodes.append(RunningServer(f"http://127.0.0.1:{port}", provider, clock, settings))
    yield Cluster(issuer, nodes[0], nodes[1])
    for stop in stops:
        stop()
    for node in nodes:
        node.provider.db.dispose()


_HASH: list[str] = []


@pytest.fixture
def user(cluster: Cluster) -> tuple[str, str]:
    if not _HASH:
        _HASH.append(cluster.a.provider.password.hash_sync(DEMO_PASSWORD))
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    with cluster.a.provider.db.write() as conn:
        return email, user_store.create(conn, email, _HASH[0], cluster.a.clock.now()).id


@pytest.fixture
def client(cluster: Cluster) -> tuple[str, str]:
    client_id, secret = cluster.a.create_client(REDIRECT_URI)
    assert secret is not None
    return client_id, secret
