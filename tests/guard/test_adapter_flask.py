"""The Flask decorator against a real FreshID."""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from freshid_guard import Allowed, BrowserStepUp, InMemoryPendingStore
from freshid_guard.adapters.flask import current_proof, fresh_required

from tests.conftest import RunningServer
from tests.guard.flow import REDIRECT_URI
from tests.guard.scenario import Answer, check_adapter, guard_for, real_tokens


def _proof(allowed: Allowed) -> dict[str, Any]:
    return {"sub": allowed.token.sub, "action": allowed.action, "proof_age": allowed.proof_age}


def test_flask_decorator(server: RunningServer) -> None:
    guard = guard_for(server)
    app = Flask(__name__)

    @app.get("/billing")
    @fresh_required(guard, "billing.update")
    def billing() -> dict[str, Any]:
        proof = current_proof()
        assert proof is not None and proof is g.freshid
        return _proof(proof)

    @app.get("/keys")
    @fresh_required(guard, "keys.reveal")
    async def keys() -> dict[str, Any]:  # async views too
        return _proof(g.freshid)

    @app.get("/open")
    def open_page() -> dict[str, str]:
        assert current_proof() is None
        return {"ok": "yes"}

    # A browser route: a refusal redirects to the provider, remembering where to come back.
    pending = InMemoryPendingStore()
    browser = BrowserStepUp(client_id="rp", redirect_uri=REDIRECT_URI, pending_store=pending)

    @app.get("/account")
    @fresh_required(guard, "billing.update", browser=browser)
    def account() -> str:
        return "account"

    client = app.test_client()

    def get(path: str, headers: dict[str, str]) -> Answer:
        r = client.get(path, headers=headers)
        return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.data)

    check_adapter(get, real_tokens(server))

    # A browser route redirects to the provider instead, remembering where to come back.
    r = client.get("/account?x=1")
    assert r.status_code == 303
    assert r.headers["Location"].startswith(f"{server.url}/authorize?")
    (record,) = pending._items.values()
    assert record.return_to == "/account?x=1"
