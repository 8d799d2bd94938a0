"""Benchmark 2: the token endpoint's refresh grant, against the same server's discovery document
(the framework's floor: routing, middleware, JSON, HTTP) and against the grant's own SQL and
signing work run in this process with no HTTP at all.

Every refresh request rotates the refresh token it got from the previous one on its chain, as a
real relying party must: N chains come from N real code flows, one chain per in-flight request.
Each in-flight request has its own keep-alive connection (see ``bench.rawhttp`` for why the load
loops do not use httpx).
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy.engine import Connection as SQLConnection
from starlette.requests import Request

from bench.flows import Browser, basic_auth
from bench.load import LoadResult, Op, measure
from bench.plan import Plan
from bench.rawhttp import Connection, request_bytes
from bench.server import Seeded, ServerProcess
from bench.stats import BenchError
from freshid.errors import OAuthError
from freshid.protocol import client_auth
from freshid.protocol.authorize.flow import find_client
from freshid.protocol.grants import refresh_token
from freshid.protocol.params import FORM_TYPE, Params
from freshid.provider import Provider
from freshid.settings import Settings


@dataclass
class Chain:
    """One refresh-token family; ``token`` is always its current (unused) refresh token."""

    token: str


def make_chains(browser: Browser, count: int) -> list[Chain]:
    """``count`` real code flows in one signed-in browser (the first one signs in)."""
    chains = []
    for _ in range(count):
        result = browser.code_flow()
        chains.append(Chain(str(result.tokens["refresh_token"])))
    return chains


async def _connections(stack: AsyncExitStack, server: ServerProcess, n: int) -> list[Connection]:
    return [await stack.enter_async_context(Connection("127.0.0.1", server.port)) for _ in range(n)]


async def _refresh_load(
    server: ServerProcess, seeded: Seeded, chains: list[Chain], plan: Plan, concurrency: int
) -> LoadResult:
    host = f"127.0.0.1:{server.port}"
    headers = {
        "Authorization": basic_auth(seeded.client_id, seeded.client_secret),
        "Content-Type": FORM_TYPE,
    }

    def op_for(chain: Chain, conn: Connection) -> Op:
        async def op() -> None:
            body = f"grant_type=refresh_token&refresh_token={chain.token}".encode()
            status, answer = await conn.send(request_bytes("POST", "/token", host, headers, body))
            if status != 200:
                raise BenchError(f"refresh failed: {status} {answer[:200]!r}")
            chain.token = json.loads(answer)["refresh_token"]

        return op

    async with AsyncExitStack() as stack:
        conns = await _connections(stack, server, concurrency)
        return await measure(
            server,
            [op_for(chain, conn) for chain, conn in zip(chains, conns, strict=False)],
            warmup_seconds=plan.warmup_seconds,
            seconds=plan.load_seconds,
            max_requests=plan.max_requests,
        )


async def _discovery_load(server: ServerProcess, plan: Plan, concurrency: int) -> LoadResult:
    raw = request_bytes("GET", "/.well-known/openid-configuration", f"127.0.0.1:{server.port}")

    def op_for(conn: Connection) -> Op:
        async def op() -> None:
            status, _ = await conn.send(raw)
            if status != 200:
                raise BenchError(f"discovery failed: {status}")

        return op

    async with AsyncExitStack() as stack:
        conns = await _connections(stack, server, concurrency)
        return await measure(
            server,
            [op_for(conn) for conn in conns],
            warmup_seconds=plan.warmup_seconds,
            seconds=plan.floor_seconds,
            max_requests=plan.max_requests,
        )


def refresh_load(
    server: ServerProcess, seeded: Seeded, chains: list[Chain], plan: Plan, concurrency: int
) -> LoadResult:
    if len(chains) < concurrency:
        raise BenchError("fewer refresh chains than in-flight requests")
    return asyncio.run(_refresh_load(server, seeded, chains, plan, concurrency))


def discovery_load(server: ServerProcess, plan: Plan, concurrency: int) -> LoadResult:
    return asyncio.run(_discovery_load(server, plan, concurrency))


@dataclass(frozen=True)
class DirectResult:
    requests: int
    seconds: float
    cpu_seconds: float
    """This process's CPU time (Python, SQLAlchemy, driver, signing; not the database server's)."""

    @property
    def cpu_per_request_s(self) -> float:
        return self.cpu_seconds / self.requests

    @property
    def per_request_s(self) -> float:
        return self.seconds / self.requests

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def direct_refresh(
    settings: Settings, seeded: Seeded, chains: list[Chain], plan: Plan
) -> DirectResult:
    """The token endpoint's unit of work for a refresh, called directly and one at a time: client
    authentication, the grant (its SQL and both ES256 signatures) and the commit; no HTTP, no
    event loop, no worker thread. The server must be idle meanwhile (it is: load has ended)."""
    provider = Provider(settings)
    try:
        key = provider.keyring(refresh=True).active
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/token",
            "query_string": b"",
            "headers": [
                (b"authorization", basic_auth(seeded.client_id, seeded.client_secret).encode()),
                (b"content-type", FORM_TYPE.encode()),
            ],
        }
        request = Request(scope)
        done = 0
        cpu0 = time.process_time()
        start = time.perf_counter()
        deadline = start + plan.direct_seconds
        while done < plan.direct_requests and time.perf_counter() < deadline:
            chain = chains[done % len(chains)]
            params = Params(grant_type="refresh_token", refresh_token=chain.token)
            now = provider.now()

            def run(conn: SQLConnection, params: Params = params, now: int = now) -> object:
                client = client_auth.authenticate(
                    request, params, lambda cid: find_client(conn, cid)
                )
                return refresh_token.exchange(conn, provider, key, client, params, now)

            with provider.db.write() as conn:
                result = run(conn)
            if isinstance(result, OAuthError) or not isinstance(result, dict):
                raise BenchError(f"direct refresh failed: {result!r}")
            chain.token = str(result["refresh_token"])
            done += 1
        return DirectResult(done, time.perf_counter() - start, time.process_time() - cpu0)
    finally:
        provider.db.dispose()
