"""Shared fixtures: databases on both backends, a provider, and a real HTTP server.

Storage-facing tests take the ``database_url`` fixture, which runs them on SQLite and, when
``FRESHID_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it), on PostgreSQL as well.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from freshid.app import create_app
from freshid.clock import OffsetClock
from freshid.provider import Provider
from freshid.settings import Settings, load_settings
from freshid.storage import clients as client_store
from freshid.storage import migrate
from freshid.storage import users as user_store
from freshid.storage.database import Database, normalise_url
from freshid.storage.schema import metadata

PG_URL = os.environ.get("FRESHID_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """One throwaway PostgreSQL database for the whole run, migrated once."""
    if not PG_URL:
        yield None
        return
    name = f"freshid_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _truncate(url: str) -> None:
    engine = sa.create_engine(normalise_url(url))
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Any, pg_database: str | None) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/freshid.sqlite3"
    assert pg_database is not None
    _truncate(pg_database)
    return pg_database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEMO_PASSWORD = "correct horse battery staple"


@dataclass
class RunningServer:
    url: str
    provider: Provider
    clock: OffsetClock
    settings: Settings

    def create_user(self, email: str, password: str = DEMO_PASSWORD) -> str:
        hashed = self.provider.password.hash_sync(password)
        with self.provider.db.write() as conn:
            return user_store.create(conn, email, hashed, self.clock.now()).id

    def create_client(self, redirect_uri: str, **kwargs: Any) -> tuple[str, str | None]:
        with self.provider.db.write() as conn:
            client, secret = client_store.create(
                conn, kwargs.pop("name", "Test RP"), [redirect_uri], self.clock.now(), **kwargs
            )
        return client.client_id, secret


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # running in a thread
        pass


def serve_in_thread(app: Any, port: int) -> Callable[[], None]:
    """Run an ASGI app on 127.0.0.1:port in a thread; returns the function that stops it."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
    )
    srv = _Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)

    def stop() -> None:
        srv.should_exit = True
        thread.join(timeout=10)

    return stop


@pytest.fixture
def server(database_url: str) -> Iterator[RunningServer]:
    """A real FreshID on a loopback port, in a thread, with a clock tests can shift."""
    port = free_port()
    clock = OffsetClock()
    settings = load_settings(environ={}, database_url=database_url, port=port)
    provider = Provider(settings, clock)
    stop = serve_in_thread(create_app(settings, provider=provider), port)
    yield RunningServer(f"http://127.0.0.1:{port}", provider, clock, settings)
    stop()
