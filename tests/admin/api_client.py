"""An admin API key and an httpx client for ``/api/v1`` on a test server."""

from __future__ import annotations

import httpx

from freshid.admin import keys as key_store
from tests.conftest import RunningServer


def admin_key(server: RunningServer, *scopes: str) -> str:
    """A new admin API key with these scopes (all of them when none are given)."""
    with server.provider.db.write() as conn:
        _, plaintext = key_store.create(
            conn,
            "test",
            frozenset(scopes or [s.value for s in key_store.Scope]),
            server.clock.now(),
        )
    return plaintext


def api_client(server: RunningServer, key: str | None = None) -> httpx.Client:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30)
