"""Benchmark 5: freshid_guard against raw ES256 verification, and a protected route's cost.

- **Uncached**: ``Guard.check`` on a token it has not seen (signature, header and claims checks,
  freshness decision for ``billing.update``) against raw ``cryptography`` ECDSA P-256 verify of the
  same token's signing input. Every call uses a different token, so every call misses the cache.
- **Cache hit**: ``Guard.check`` on one token again and again: the cache skips the signature, the
  freshness decision still runs on every call (it depends on the time).
- **Starlette route**: the same ``GET /billing`` handler with and without the guard's plain ASGI
  middleware, driven in-process through the ASGI interface (no sockets, so neither HTTP parsing
  nor the network hides the guard's share), uncached and on cache hits.

Keys come from a JWKS served by an ``httpx.MockTransport`` in this process (fetched once, then
cached by the guard); tokens are minted by FreshID's own ``minting.access_token``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from freshid_guard import ActionPolicy, Guard
from freshid_guard.adapters.asgi import FreshnessMiddleware, Rule
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bench.es256 import sample_access_token
from bench.plan import Plan
from bench.stats import best_of
from freshid.tokens import jws
from freshid.tokens import keys as keymod

ISSUER = "http://127.0.0.1:8000"  # never contacted: the JWKS comes from a MockTransport
ACTION = "billing.update"
_ECDSA = ec.ECDSA(hashes.SHA256())
_MAX_OPS = 1_000_000


@dataclass(frozen=True)
class GuardResult:
    raw_verify: float
    uncached: float
    cached: float
    route_open: float
    route_uncached: float
    route_cached: float


def _guard(key: keymod.SigningKey, cache_size: int) -> Guard:
    documents = {
        "/.well-known/openid-configuration": {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"},
        "/jwks": {"keys": [key.public_jwk()]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=json.dumps(documents[request.url.path]).encode(),
            headers={"content-type": "application/json"},
        )

    policies = {ACTION: ActionPolicy(ACTION, "change billing details", max_age=300)}
    return Guard(
        ISSUER,
        policies,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        cache_size=cache_size,
    )


def _tokens(key: keymod.SigningKey, count: int, now: int) -> list[str]:
    return [sample_access_token(key, now) for _ in range(count)]


def _cycle(items: list[str]) -> Callable[[], str]:
    index = 0

    def next_item() -> str:
        nonlocal index
        index = (index + 1) % len(items)
        return items[index]

    return next_item


def _asgi_rate(app: Any, authorization: Callable[[], str | None], seconds: float) -> float:
    """Requests/s of ``GET /billing`` called straight through the ASGI interface."""

    async def one() -> None:
        header = authorization()
        headers = [(b"authorization", header.encode())] if header else []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/billing",
            "raw_path": b"/billing",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8001),
        }
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        await app(scope, receive, send)
        if status != 200:
            raise RuntimeError(f"protected route answered {status}")

    async def loop() -> float:
        done, started = 0, time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline and done < _MAX_OPS:
            await one()
            done += 1
        return done / (time.perf_counter() - started)

    return asyncio.run(loop())


def run(plan: Plan, now: int) -> GuardResult:
    key = keymod.generate(now)
    count = max(2_000, int(plan.es256_round_seconds * 20_000))
    tokens = _tokens(key, count, now)
    token = tokens[0]
    header_b64, payload_b64, sig_b64 = token.split(".")
    message = f"{header_b64}.{payload_b64}".encode("ascii")
    sig = jws.b64url_decode(sig_b64)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public_key = key.public_key

    # A cache smaller than the token list: each uncached call really misses.
    uncached_guard, cached_guard = _guard(key, 16), _guard(key, 1024)
    next_token = _cycle(tokens)
    cached_guard.check(f"Bearer {token}", ACTION)

    def raw_verify() -> object:
        public_key.verify(der, message, _ECDSA)
        return None

    def uncached() -> object:
        return uncached_guard.check(f"Bearer {next_token()}", ACTION)

    def cached() -> object:
        return cached_guard.check(f"Bearer {token}", ACTION)

    rates = best_of(
        {"raw": raw_verify, "uncached": uncached, "cached": cached},
        plan.es256_rounds,
        plan.es256_round_seconds,
        _MAX_OPS,
    )

    async def billing(request: Request) -> PlainTextResponse:
        return PlainTextResponse("billing")

    def app(guard: Guard | None) -> Any:
        inner = Starlette(routes=[Route("/billing", billing)])
        if guard is None:
            return inner
        return FreshnessMiddleware(inner, guard=guard, rules=[Rule("/billing", ACTION)])

    seconds = plan.es256_round_seconds
    route_open = route_uncached = route_cached = 0.0
    for _ in range(plan.es256_rounds):
        route_open = max(route_open, _asgi_rate(app(None), lambda: None, seconds))
        route_uncached = max(
            route_uncached,
            _asgi_rate(app(uncached_guard), lambda: f"Bearer {next_token()}", seconds),
        )
        route_cached = max(
            route_cached, _asgi_rate(app(cached_guard), lambda: f"Bearer {token}", seconds)
        )
    return GuardResult(
        rates["raw"], rates["uncached"], rates["cached"], route_open, route_uncached, route_cached
    )
