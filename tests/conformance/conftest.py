"""Fixtures for the conformance suite: one FreshID per backend per module (checks register their
own users and clients, so they share it), one openid-client process per run, and a browser per
check.

Each check's docstring starts with ``<check name>: <what it asserts>``. With
``FRESHID_CONFORMANCE_TABLE=<path>`` set, the run writes the Markdown table of checks and results
that docs/conformance.md quotes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from freshid.storage import users as user_store
from tests.conformance.openid_client import CertifiedRP, NodeRP, NodeUnavailable
from tests.conformance.servers import backend_url, module_server
from tests.conftest import (
    BACKENDS,
    DEMO_PASSWORD,
    RunningServer,
)
from tests.protocol.rp import Browser

REDIRECT_URI = "http://127.0.0.1:9/cb"
POST_LOGOUT_URI = "http://127.0.0.1:9/bye"


@pytest.fixture(scope="session")
def node_rp() -> Iterator[NodeRP]:
    try:
        node = NodeRP()
    except NodeUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    yield node
    node.close()


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: str | None,
) -> Iterator[RunningServer]:
    """A FreshID shared by the checks of one module (this overrides the per-test ``server``)."""
    yield from module_server(backend_url(request.param, tmp_path_factory, pg_database))


_HASHES: dict[int, str] = {}


@pytest.fixture
def user(server: RunningServer) -> tuple[str, str]:
    """A new user for this check: (email, subject)."""
    key = id(server)
    if key not in _HASHES:
        _HASHES[key] = server.provider.password.hash_sync(DEMO_PASSWORD)
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    with server.provider.db.write() as conn:
        return email, user_store.create(conn, email, _HASHES[key], server.clock.now()).id


def register(
    server: RunningServer,
    node: NodeRP,
    redirect_uri: str = REDIRECT_URI,
    *,
    auth: str = "basic",
    **kwargs: Any,
) -> CertifiedRP:
    kwargs.setdefault("post_logout_redirect_uris", [POST_LOGOUT_URI])
    client_id, secret = server.create_client(redirect_uri, **kwargs)
    return CertifiedRP(node, server.url, client_id, secret, redirect_uri, auth)


@pytest.fixture
def rp(server: RunningServer, node_rp: NodeRP) -> CertifiedRP:
    """A confidential client (client_secret_basic) as openid-client sees it."""
    return register(server, node_rp)


@pytest.fixture
def browser(server: RunningServer) -> Iterator[Browser]:
    b = Browser(server.url)
    yield b
    b.close()


# --- the table ---------------------------------------------------------------------------------

_RESULTS: dict[str, dict[str, Any]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if isinstance(item, pytest.Function) and "conformance" in item.nodeid:
        _record(item, report)
    return report


def _record(item: pytest.Function, report: pytest.TestReport) -> None:
    doc = (item.function.__doc__ or "").strip()
    check, _, asserts = doc.partition(":")
    name = item.originalname
    row = _RESULTS.setdefault(
        name,
        {
            "check": check.strip(),
            "asserts": " ".join(asserts.split()),
            "module": item.module.__name__.rsplit(".", 1)[-1] if item.module else "",
            "results": {},
        },
    )
    backend = item.callspec.params.get("server", "-") if hasattr(item, "callspec") else "-"
    if report.when == "call" or (report.when == "setup" and not report.passed):
        row["results"][backend] = "skipped" if report.skipped else report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("FRESHID_CONFORMANCE_TABLE")
    if not target or not _RESULTS:
        return
    lines = ["| check | what it asserts | SQLite | PostgreSQL |", "|---|---|---|---|"]
    for row in _RESULTS.values():
        r = row["results"]
        lines.append(
            f"| {row['check']} | {row['asserts']} | {r.get('sqlite', '-')} "
            f"| {r.get('postgresql', '-')} |"
        )
    Path(target).write_text("\n".join(lines) + "\n", encoding="utf-8")
