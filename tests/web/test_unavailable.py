"""A database outage answers 503 with Retry-After — JSON at protocol endpoints, a hosted page
elsewhere — and the same requests succeed once the database is back (on both stores; the
PostgreSQL restart itself is in tests/faults)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from freshid.admin import keys as key_store
from tests.conftest import RunningServer

REDIRECT_URI = "http://127.0.0.1:9/cb"


@contextmanager
def _down(*_args: Any, **_kwargs: Any) -> Iterator[Any]:
    raise sa.exc.OperationalError(
        "BEGIN", {}, sqlite3.OperationalError("unable to open database file")
    )
    yield  # pragma: no cover


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    """The same outage for a method that is no context manager (``Database.try_begin``)."""
    with _down():
        pass


def test_an_outage_is_a_503_to_retry_and_requests_succeed_once_the_database_is_back(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, secret = server.create_client(REDIRECT_URI)
    assert secret is not None
    db = server.provider.db
    with db.write() as conn:
        _, admin_key = key_store.create(
            conn, "ops", frozenset({key_store.Scope.EVENTS_READ.value}), server.clock.now()
        )
    token_request = {"grant_type": "refresh_token", "refresh_token": "x" * 43}
    authorize = {
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    with httpx.Client(base_url=server.url, timeout=10) as http:
        with monkeypatch.context() as outage:
            for name in ("write", "read"):
                outage.setattr(db, name, _down)
            outage.setattr(db, "try_begin", _refuse)
            token = http.post("/token", data=token_request, auth=(client_id, secret))
            page = http.get("/authorize", params=authorize)
            api = http.get("/api/v1/events", headers={"Authorization": f"Bearer {admin_key}"})
        assert token.status_code == 503
        assert token.headers["retry-after"] == "2"
        assert token.headers["cache-control"] == "no-store"
        assert token.json()["error"] == "temporarily_unavailable"
        assert page.status_code == 503
        assert page.headers["retry-after"] == "2"
        assert page.headers["content-type"].startswith("text/html")
        assert "try again" in page.text
        assert api.status_code == 503
        assert api.headers["retry-after"] == "2"
        assert api.headers["content-type"] == "application/problem+json"

        # Back: the same requests get their ordinary answers.
        token = http.post("/token", data=token_request, auth=(client_id, secret))
        assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
        page = http.get("/authorize", params=authorize, follow_redirects=False)
        assert page.status_code == 303
        api = http.get("/api/v1/events", headers={"Authorization": f"Bearer {admin_key}"})
        assert api.status_code == 200
