"""A FreshID shared by the tests of one module, on each backend (SQLite in a temporary directory;
the run's PostgreSQL database, emptied first). The conformance, abuse and scale suites register
their own users and clients per test, so one server per module is enough and much cheaper than
one per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from freshid.app import create_app
from freshid.clock import OffsetClock
from freshid.provider import Provider
from freshid.settings import load_settings
from tests.conftest import RunningServer, _truncate, free_port, serve_in_thread


def backend_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, pg_database: str | None
) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('freshid')}/freshid.sqlite3"
    assert pg_database is not None
    _truncate(pg_database)
    return pg_database


def module_server(database_url: str, **overrides: Any) -> Iterator[RunningServer]:
    """Serve FreshID on a free loopback port until the generator is closed."""
    port = free_port()
    clock = OffsetClock()
    settings = load_settings(environ={}, database_url=database_url, port=port, **overrides)
    provider = Provider(settings, clock)
    stop = serve_in_thread(create_app(settings, provider=provider), port)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", provider, clock, settings)
    finally:
        stop()
        provider.db.dispose()
