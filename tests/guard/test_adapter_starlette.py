"""The Starlette/FastAPI adapters against a real FreshID: the dependency, the ASGI middleware, and
a browser step-up that goes through the provider's re-authentication and comes back."""

# No ``from __future__ import annotations`` here: FastAPI must evaluate the ``Annotated`` dependency
# annotations of the routes defined inside the tests, whose dependencies are local variables.

import warnings
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette 1.x prefers httpx2 for its TestClient
    from starlette.testclient import TestClient

from freshid_guard import Allowed, BrowserStepUp, InMemoryPendingStore
from freshid_guard.adapters.starlette import FreshAction, FreshnessMiddleware, Rule, install, rules

from tests.conftest import RunningServer
from tests.guard.flow import REDIRECT_URI, User
from tests.guard.scenario import Answer, check_adapter, guard_for, real_tokens


def _proof(allowed: Allowed) -> dict[str, Any]:
    return {"sub": allowed.token.sub, "action": allowed.action, "proof_age": allowed.proof_age}


def _get(client: TestClient) -> Any:
    def get(path: str, headers: dict[str, str]) -> Answer:
        r = client.get(path, headers=headers, follow_redirects=False)
        return Answer(r.status_code, r.headers, r.content)

    return get


def test_fastapi_dependency(server: RunningServer) -> None:
    guard = guard_for(server)
    app = FastAPI()
    install(app)
    billing = FreshAction(guard, "billing.update")
    keys = FreshAction(guard, "keys.reveal")

    @app.get("/billing")
    async def update_billing(proof: Annotated[Allowed, Depends(billing)]) -> dict[str, Any]:
        return _proof(proof)

    @app.get("/keys")
    def reveal(proof: Annotated[Allowed, Depends(keys)]) -> dict[str, Any]:
        return _proof(proof)

    @app.get("/open")
    def open_page() -> dict[str, str]:
        return {"ok": "yes"}

    with TestClient(app) as client:
        check_adapter(_get(client), real_tokens(server))


def test_starlette_middleware_and_evaluate(server: RunningServer) -> None:
    guard = guard_for(server)
    keys = FreshAction(guard, "keys.reveal")

    async def billing(request: Request) -> Response:
        return JSONResponse(_proof(request.state.freshid))

    async def reveal(request: Request) -> Response:
        outcome = await keys.evaluate(request)  # a plain Starlette endpoint using the helper
        if isinstance(outcome, Response):
            return outcome
        return JSONResponse(_proof(outcome))

    async def open_page(request: Request) -> Response:
        assert "freshid" not in request.state._state
        return JSONResponse({"ok": "yes"})

    app = Starlette(
        routes=[Route("/billing", billing), Route("/keys", reveal), Route("/open", open_page)]
    )
    wrapped = FreshnessMiddleware(app, guard=guard, rules=rules(("/billing", "billing.update")))
    with TestClient(wrapped) as client:
        check_adapter(_get(client), real_tokens(server))
        # Method filters and patterns.
        assert wrapped.match("GET", "/billing/") is not None
        assert wrapped.match("GET", "/billingx") is None


def test_middleware_patterns() -> None:
    from freshid_guard.adapters.asgi import compile_pattern

    regex = compile_pattern("/projects/{id}/keys/{rest:path}")
    assert regex.fullmatch("/projects/42/keys/a/b")
    assert not regex.fullmatch("/projects/42/x/keys/a")
    assert compile_pattern("/a.b").fullmatch("/a.b") and not compile_pattern("/a.b").fullmatch(
        "/axb"
    )
    rule = Rule("/billing", "billing.update", frozenset({"POST"}))
    assert rule.methods == frozenset({"POST"})


def test_browser_step_up_round_trip(server: RunningServer) -> None:
    """A browser route sends a stale user to the provider and gets them back to the same page."""
    guard = guard_for(server)
    user = User(server)
    old = user.access_token(age=400)
    pending = InMemoryPendingStore()
    browser = BrowserStepUp(
        client_id=user.client_id, redirect_uri=REDIRECT_URI, pending_store=pending
    )

    async def billing(request: Request) -> Response:
        return JSONResponse(_proof(request.state.freshid))

    app = FreshnessMiddleware(
        Starlette(routes=[Route("/billing", billing)]),
        guard=guard,
        rules=[Rule("/billing", "billing.update")],
        browser=browser,
    )
    with TestClient(app) as client:
        r = client.get(
            "/billing?tab=cards", headers={"Authorization": f"Bearer {old}"}, follow_redirects=False
        )
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.startswith(f"{server.url}/authorize?")
        q = parse_qs(urlsplit(location).query)
        assert q["max_age"] == ["300"] and q["client_id"] == [user.client_id]

        # The user re-authenticates at the provider (same session) and comes back with a code.
        callback = user.follow(location)
        record = pending.pop(callback["state"][0], guard.now())
        assert record is not None and record.return_to == "/billing?tab=cards"
        assert record.action == "billing.update"
        new = user.redeem(callback["code"][0], record.code_verifier)["access_token"]

        back = client.get(record.return_to, headers={"Authorization": f"Bearer {new}"})
        assert back.status_code == 200 and back.json()["proof_age"] < 60
    user.close()
