"""``python -m bench.peers [--quick]``: FreshID next to a peer OpenID Provider, in one run on one
machine: panva's npm ``oidc-provider`` (OpenID-certified), installed from ``bench/peers``'s lock
file with ``npm ci`` when missing (or not as pinned) and started by
``bench/peers/oidc_provider.mjs``.

FreshID runs on SQLite and, with ``--postgres URL``, on a throwaway PostgreSQL database too. Next to
FreshID on SQLite runs the peer on its default in-process memory adapter (nothing durable). Next to
FreshID on PostgreSQL run two peers: the memory-adapter one, and one on
``bench/peers/pg_adapter.mjs``, which keeps the peer's state in the same throwaway database (its
own table, ``oidc_payloads``), each write committed durably, like for like with FreshID.

All servers of a store run at the same time, each in its own process (FreshID: ``bench.serve``,
uvicorn, one worker; each peer: one Node.js process), on loopback ports. The same closed loops run
against each, one after the other for every row: discovery GET, JWKS GET, the refresh-token grant
with every request rotating its own chain (N chains from N real code flows, client_secret_basic),
and the authorization code round trip. Reported, one table row per benchmark, in-flight count and
peer: requests/s, p50/p99, server CPU per request (the server process's own, not PostgreSQL's),
and FreshID ÷ peer ratios. Bounded: every loop stops at a request count and a wall-time limit
(``bench.plan``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from bench.flows import Browser, basic_auth, pkce_pair
from bench.load import LoadResult, Op, measure
from bench.plan import FULL, QUICK, Plan
from bench.rawhttp import Connection, request_bytes
from bench.report import MachineLoad, cpu_model
from bench.server import (
    REPO_ROOT,
    Seeded,
    ServerProcess,
    Store,
    postgres_store,
    seed,
    sqlite_store,
    start_server,
)
from bench.stats import BenchError, ms, rate, us
from bench.token import Chain, discovery_load, make_chains, refresh_load
from freshid.methods.password import PasswordMethod
from freshid.settings import load_settings

PEER_DIR = REPO_ROOT / "bench" / "peers"
PEER_NAME = "oidc-provider"
_NPM_TIMEOUT = 300.0
_START_TIMEOUT = 30.0
_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


# --- the peer ----------------------------------------------------------------------------------


def _installed_as_pinned() -> bool:
    """Whether every dependency of bench/peers/package.json is in node_modules at its version."""
    pinned: dict[str, str] = json.loads((PEER_DIR / "package.json").read_text())["dependencies"]
    for name, version in pinned.items():
        package = PEER_DIR / "node_modules" / name / "package.json"
        if not package.exists() or json.loads(package.read_text())["version"] != version:
            return False
    return True


def ensure_installed() -> tuple[str, str]:
    """``node`` and the peer's version; runs ``npm ci`` in bench/peers when a dependency is not
    installed as pinned."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise BenchError("node and npm are needed for the peer benchmark")
    package = PEER_DIR / "node_modules" / PEER_NAME / "package.json"
    if not _installed_as_pinned():
        progress(f"installing {PEER_NAME} and its adapter's pg (npm ci in bench/peers)")
        try:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(PEER_DIR)],
                check=True,
                timeout=_NPM_TIMEOUT,
                stdout=subprocess.DEVNULL,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise BenchError(f"npm ci in bench/peers failed: {exc}") from None
    version = json.loads(package.read_text())["version"]
    node_version = subprocess.run(
        [node, "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return node_version, str(version)


MEMORY = "memory adapter"
POSTGRES = "PostgreSQL adapter"
PEER_POOL_SIZE = 10
"""Connections of the PostgreSQL-adapter peer's pg.Pool."""


def start_peer(
    store: Store,
    seeded: Seeded,
    sub: str,
    postgres_url: str | None = None,
) -> ServerProcess:
    """Start the peer with the same client as FreshID's; returns once it printed READY. With
    ``postgres_url``, on its PostgreSQL adapter in that database (its table created before READY),
    else on its memory adapter."""
    node = shutil.which("node")
    assert node is not None
    config: dict[str, object] = {
        "port": 0,
        "client_id": seeded.client_id,
        "client_secret": seeded.client_secret,
        "redirect_uri": seeded.redirect_uri,
        "account": {"sub": sub, "email": seeded.email},
    }
    if postgres_url is not None:
        # node-postgres takes libpq's URLs: no SQLAlchemy driver name in the scheme.
        url = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", postgres_url)
        config |= {"postgres_url": url, "postgres_pool_size": PEER_POOL_SIZE}
    log = store.workdir / ("peer-postgresql.log" if postgres_url else "peer-memory.log")
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [node, "oidc_provider.mjs"],
            cwd=PEER_DIR,
            env={**os.environ, "PEER_CONFIG": json.dumps(config), "NODE_ENV": "production"},
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], _START_TIMEOUT)
    line = proc.stdout.readline().decode() if ready else ""
    match = re.fullmatch(r"READY http://127\.0\.0\.1:(\d+)\s*", line)
    if match is None:
        proc.kill()
        proc.wait(timeout=5)
        raise BenchError(f"{PEER_NAME} did not start: {line!r}\n{log.read_text()[-2000:]}")
    return ServerProcess(proc, int(match.group(1)), log)


def _authorization_params(seeded: Seeded) -> tuple[dict[str, str], str, str]:
    """A code request's parameters (PKCE S256, state, nonce), its state and its verifier."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(12)
    params = {
        "client_id": seeded.client_id,
        "redirect_uri": seeded.redirect_uri,
        "response_type": "code",
        "scope": "openid email",
        "state": state,
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return params, state, verifier


def _code_redemption(seeded: Seeded, code: str, verifier: str) -> dict[str, Any]:
    return {
        "data": {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": seeded.redirect_uri,
            "code_verifier": verifier,
        },
        "headers": {"Authorization": basic_auth(seeded.client_id, seeded.client_secret)},
    }


def peer_code_flow(
    peer: ServerProcess, seeded: Seeded, http: httpx.Client | None = None
) -> dict[str, object]:
    """One authorization code flow at the peer (its interaction finishes at once) and the
    redemption; returns the token response. With ``http``, its cookies keep the peer's session,
    so later flows in it get a code without an interaction."""
    params, state, verifier = _authorization_params(seeded)
    with contextlib.ExitStack() as stack:
        if http is None:
            http = stack.enter_context(
                httpx.Client(base_url=peer.url, follow_redirects=False, timeout=30)
            )
        response = http.get("/auth", params=params)
        for _ in range(10):
            location = urljoin(str(response.url), response.headers.get("location", ""))
            if response.status_code not in (302, 303) or not location.startswith(peer.url):
                break
            response = http.get(location)
        if not location.startswith(seeded.redirect_uri):
            raise BenchError(f"{PEER_NAME}: no redirect to the client ({response.status_code})")
        query = parse_qs(urlsplit(location).query)
        if query.get("state") != [state] or "code" not in query:
            raise BenchError(f"{PEER_NAME}: authorization failed: {query.get('error')}")
        token = http.post("/token", **_code_redemption(seeded, query["code"][0], verifier))
    if token.status_code != 200 or "refresh_token" not in token.json():
        raise BenchError(f"{PEER_NAME}: code redemption failed: {token.text[:200]}")
    body: dict[str, object] = token.json()
    return body


# --- loops -------------------------------------------------------------------------------------


async def _get_load(server: ServerProcess, path: str, plan: Plan, concurrency: int) -> LoadResult:
    raw = request_bytes("GET", path, f"127.0.0.1:{server.port}")

    def op_for(conn: Connection) -> Op:
        async def op() -> None:
            status, _ = await conn.send(raw)
            if status != 200:
                raise BenchError(f"GET {path} failed: {status}")

        return op

    async with AsyncExitStack() as stack:
        conns = [
            await stack.enter_async_context(Connection("127.0.0.1", server.port))
            for _ in range(concurrency)
        ]
        return await measure(
            server,
            [op_for(conn) for conn in conns],
            warmup_seconds=plan.warmup_seconds,
            seconds=plan.floor_seconds,
            max_requests=plan.max_requests,
        )


def jwks_load(server: ServerProcess, plan: Plan, concurrency: int) -> LoadResult:
    return asyncio.run(_get_load(server, "/jwks", plan, concurrency))


async def _code_round_trips(
    server: ServerProcess,
    seeded: Seeded,
    authorize_path: str,
    sessions: list[httpx.Cookies],
    plan: Plan,
) -> LoadResult:
    def op_for(http: httpx.AsyncClient) -> Op:
        async def op() -> None:
            params, state, verifier = _authorization_params(seeded)
            response = await http.get(authorize_path, params=params)
            location = response.headers.get("location", "")
            if response.status_code not in (302, 303) or not location.startswith(
                seeded.redirect_uri
            ):
                raise BenchError(
                    f"{authorize_path} did not answer with a code: {response.status_code} "
                    f"{location[:60]!r}"
                )
            query = parse_qs(urlsplit(location).query)
            if query.get("state") != [state] or "code" not in query:
                raise BenchError(f"authorization failed: {query.get('error')}")
            token = await http.post(
                "/token", **_code_redemption(seeded, query["code"][0], verifier)
            )
            if token.status_code != 200:
                raise BenchError(f"code redemption failed: {token.status_code} {token.text[:200]}")

        return op

    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=server.url, cookies=cookies, follow_redirects=False, timeout=30
                )
            )
            for cookies in sessions
        ]
        return await measure(
            server,
            [op_for(http) for http in clients],
            warmup_seconds=plan.warmup_seconds,
            seconds=plan.load_seconds,
            max_requests=plan.max_requests,
        )


def code_round_trip_load(
    target: Target, seeded: Seeded, plan: Plan, concurrency: int
) -> LoadResult:
    """Authorization request with a live session, straight to the redirect with a code, then its
    redemption (PKCE, client_secret_basic): two requests per round trip, no page shown."""
    return asyncio.run(
        _code_round_trips(
            target.server,
            seeded,
            target.authorize_path,
            [target.session() for _ in range(concurrency)],
            plan,
        )
    )


@dataclass(frozen=True)
class Target:
    name: str
    server: ServerProcess
    new_chains: Callable[[int], list[Chain]]
    """Fresh refresh-token families from real code flows, made right before each refresh loop:
    the peer's default memory adapter is an LRU of 1,000 entries, so families left idle during
    an earlier loop's thousands of rotations would be evicted."""
    authorize_path: str
    session: Callable[[], httpx.Cookies]
    """A new signed-in browser's cookies, one per in-flight loop, made right before the code
    round trips (the peer's memory adapter may have evicted an older session, and the peer ends
    a session's earlier grant, codes included, when the session authorizes the client again)."""
    adapter: str = ""
    """The peer's storage adapter (``MEMORY`` or ``POSTGRES``); empty for FreshID."""


@dataclass(frozen=True)
class Pair:
    benchmark: str
    concurrency: int
    freshid: LoadResult
    peer: LoadResult
    adapter: str
    """The peer's storage adapter."""


def _cell(r: LoadResult) -> str:
    return f"{rate(r.rps)} · p50 {ms(r.latencies.p50)} · p99 {ms(r.latencies.p99)}"


def _cpu(r: LoadResult) -> str:
    return f"{us(r.server_cpu_per_request_s)} CPU/req at {r.server_cpu_share:.2f} cores"


def render(pairs: list[Pair], store: str) -> list[str]:
    lines = []
    for p in pairs:
        f, q = p.freshid, p.peer
        lines.append(
            f"| {p.benchmark} | {store} | {p.concurrency} | {_cell(f)} | {p.adapter}: {_cell(q)} "
            f"| {f.rps / q.rps:.2f}x | {f.latencies.p99 / q.latencies.p99:.2f}x "
            f"| FreshID {_cpu(f)}; {PEER_NAME} {_cpu(q)}; "
            f"{f.requests:,} / {q.requests:,} requests |"
        )
    return lines


HEADER = (
    f"| benchmark | FreshID store | in flight | FreshID | {PEER_NAME} (its adapter in the cell) "
    "| req/s ratio (FreshID ÷ peer) | p99 ratio (FreshID ÷ peer; < 1 is better) | notes |\n"
    "|---|---|---|---|---|---|---|---|"
)


def peer_target(
    peer: ServerProcess, adapter: str, seeded: Seeded, stack: contextlib.ExitStack
) -> Target:
    """The loops' view of a running peer; its signed-in browsers are closed with ``stack``."""

    def chains(n: int) -> list[Chain]:
        # Each family from its own browser: a new sign-in in a session ends that session's
        # earlier families at the peer.
        return [Chain(str(peer_code_flow(peer, seeded)["refresh_token"])) for _ in range(n)]

    def session() -> httpx.Cookies:
        browser = stack.enter_context(
            httpx.Client(base_url=peer.url, follow_redirects=False, timeout=30)
        )
        peer_code_flow(peer, seeded, browser)  # signs in
        return browser.cookies

    return Target(f"{PEER_NAME} ({adapter})", peer, chains, "/auth", session, adapter)


def run_store(store: Store, plan: Plan) -> tuple[list[str], str]:
    settings = load_settings(environ={})
    hasher = PasswordMethod.from_settings(settings, concurrency=1)
    adapters = [MEMORY] + ([POSTGRES] if store.name == "postgresql" else [])
    progress(f"{store.name}: seeding and starting FreshID and {PEER_NAME} ({', '.join(adapters)})")
    seeded = seed(store, hasher)
    freshid = start_server(store)
    peers: list[tuple[str, ServerProcess]] = []
    stack = contextlib.ExitStack()
    try:
        for adapter in adapters:
            url = store.url if adapter == POSTGRES else None
            peers.append((adapter, start_peer(store, seeded, "bench-user", url)))
        browser = stack.enter_context(contextlib.closing(Browser(freshid.url, seeded)))

        def freshid_session() -> httpx.Cookies:
            signed_in = stack.enter_context(contextlib.closing(Browser(freshid.url, seeded)))
            make_chains(signed_in, 1)  # signs in
            return signed_in.http.cookies

        targets = [
            Target(
                "FreshID", freshid, lambda n: make_chains(browser, n), "/authorize", freshid_session
            ),
            *(peer_target(peer, adapter, seeded, stack) for adapter, peer in peers),
        ]
        loops: list[tuple[str, Callable[[Target, int], LoadResult]]] = [
            ("discovery GET", lambda t, c: discovery_load(t.server, plan, c)),
            ("JWKS GET", lambda t, c: jwks_load(t.server, plan, c)),
            (
                "refresh grant, each request rotating its chain",
                lambda t, c: refresh_load(t.server, seeded, t.new_chains(c), plan, c),
            ),
            (
                "authorization code round trip (authorize with a session + code redemption)",
                lambda t, c: code_round_trip_load(t, seeded, plan, c),
            ),
        ]
        pairs = []
        for name, loop in loops:
            for c in plan.concurrencies:
                results = []
                for target in targets:
                    progress(f"{store.name}: {name}, {c} in flight, {target.name}")
                    results.append(loop(target, c))
                pairs += [
                    Pair(name, c, results[0], result, target.adapter)
                    for target, result in zip(targets[1:], results[1:], strict=True)
                ]
        memory = f"RSS after the loads: FreshID {freshid.rss_kib() / 1024:.0f} MiB, " + ", ".join(
            f"{PEER_NAME} ({adapter}) {peer.rss_kib() / 1024:.0f} MiB" for adapter, peer in peers
        )
    finally:
        stack.close()
        freshid.stop()
        for _, peer in peers:
            peer.stop()
    return render(pairs, store.name), memory


@contextlib.contextmanager
def _stores(postgres_url: str | None) -> Iterator[list[Store]]:
    with contextlib.ExitStack() as stack:
        stores = [stack.enter_context(sqlite_store())]
        if postgres_url:
            stores.append(stack.enter_context(postgres_store(postgres_url)))
        yield stores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers", description=f"FreshID next to npm {PEER_NAME}"
    )
    parser.add_argument("--quick", action="store_true", help="shorter loops (about 40 s)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("FRESHID_BENCH_POSTGRES_URL"),
        metavar="URL",
        help="also run FreshID on a throwaway PostgreSQL database "
        "(default: $FRESHID_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="FreshID on SQLite only")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    postgres_url = None if args.no_postgres else args.postgres
    started = time.time()
    load = MachineLoad()
    lines: list[str] = []
    notes: list[str] = []
    try:
        node_version, peer_version = ensure_installed()
        with _stores(postgres_url) as stores:
            for store in stores:
                rows, memory = run_store(store, plan)
                lines += rows
                notes.append(f"{store.name}: {memory}")
    except BenchError as exc:
        print(f"bench.peers: {exc}", file=sys.stderr)
        return 1
    command = "python -m bench.peers" + (" --quick" if args.quick else "")
    print(f"## FreshID next to {PEER_NAME} ({plan.name} run)\n")
    print(f"- command: `{command}`" + (" with PostgreSQL" if postgres_url else ""))
    print(
        f"- machine: {len(os.sched_getaffinity(0))} cores ({cpu_model()}); FreshID: Python "
        f"{sys.version.split()[0]}, uvicorn, 1 worker; {PEER_NAME} {peer_version} on Node.js "
        f"{node_version}, 1 process"
    )
    print(
        f"- run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
        f"{time.time() - started:.0f} s"
    )
    print(f"- load: {load.summary()}")
    for note in notes:
        print(f"- {note}")
    print()
    print(HEADER)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
