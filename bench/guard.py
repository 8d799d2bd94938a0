"""Benchmark 5: freshid_guard against raw ES256 verification, and a protected route's cost.

In-process, on one core (CPU time of the measuring thread, so that a busy machine descheduling
the process does not count; rounds interleaved, the best round counts):

- **Uncached**: ``Guard.check`` on a token it has not seen (signature, header and claims checks,
  freshness decision for ``billing.update``) against raw ``cryptography`` ECDSA P-256 verify of the
  same tokens' signing inputs. Every call uses a different token, so every call misses the cache.
- **Python floor**: the least any Python verifier of these tokens must do, with none of the
  guard's checks: split the token, base64url-decode signature and payload, SHA-256 of the signing
  input, DER framing, the same prehashed ``cryptography`` verify, ``orjson`` parse of the payload.
  It shows how close to the raw verify a Python guard can come on this machine at all.
- **Cache hit**: ``Guard.check`` on one token again and again: the cache skips the signature, the
  freshness decision still runs on every call (it depends on the time).
- **Starlette route, in-process**: the same ``GET /billing`` handler with and without the guard's
  plain ASGI middleware, driven through the ASGI interface (no sockets, so neither HTTP parsing
  nor the network hides the guard's share), uncached and on cache hits.

Over HTTP: the same two apps, each served by uvicorn (one worker, its own process) on a free
loopback port, loaded by a closed loop of keep-alive connections (``bench.rawhttp`` on uvloop, a
few requests in flight, bounded by time and count): unprotected, protected with a new token on
every request (the server's guard cache holds 16 tokens, the client cycles through thousands), and
protected with one token (cache hits). Short phases, interleaved, four rounds; the best round of
each phase counts, and the server's CPU time per request (from ``/proc``) is reported beside it.

Keys come from a JWKS served by an ``httpx.MockTransport`` (fetched once, then cached by the
guard); tokens are minted by FreshID's own ``minting.access_token``.

``python -m bench.guard [--quick]`` runs this benchmark alone and prints its rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from freshid_guard import ActionPolicy, Guard
from freshid_guard.adapters.asgi import FreshnessMiddleware, Rule
from freshid_guard.jose import ALGORITHMS, b64url_bytes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bench.es256 import sample_access_token
from bench.load import LoadResult, measure
from bench.plan import Plan
from bench.rawhttp import Connection, request_bytes
from bench.server import REPO_ROOT, ServerProcess, free_port, wait_ready
from bench.stats import BenchError
from freshid.tokens import jws
from freshid.tokens import keys as keymod

ISSUER = "http://127.0.0.1:8000"  # never contacted: the JWKS comes from a MockTransport
ACTION = "billing.update"
PATH = "/billing"
_ECDSA = ec.ECDSA(hashes.SHA256())
_MAX_OPS = 1_000_000
_WALL_FACTOR = 5
"""A CPU-timed round also stops after this many times its length in wall time (a starved
process must not stretch the run without bound)."""
_SERVER_CACHE = 16
"""The HTTP server's guard cache: far fewer tokens than the uncached phase cycles through."""
_HTTP_ROUNDS = 4
_HTTP_WARMUP = 0.5
"""Seconds of warm-up before each measured HTTP round (new connections, a warm server)."""
T = TypeVar("T")


@dataclass(frozen=True)
class HTTPPhase:
    """Every round of one HTTP phase."""

    rounds: tuple[LoadResult, ...]

    @property
    def best(self) -> LoadResult:
        """The round with the most requests/s."""
        return max(self.rounds, key=lambda r: r.rps)

    @property
    def server_cpu_per_request_s(self) -> float:
        """The least server CPU per request of any round: the one least disturbed."""
        return min(r.server_cpu_per_request_s for r in self.rounds)


@dataclass(frozen=True)
class HTTPResult:
    in_flight: int
    seconds: float
    """Measured wall time of one round of one phase."""
    open: HTTPPhase
    uncached: HTTPPhase
    cached: HTTPPhase


@dataclass(frozen=True)
class GuardResult:
    raw_verify: float
    uncached: float
    floor: float
    """The Python floor (module docstring): decode, verify and parse, no checks."""
    cached: float
    route_open: float
    route_uncached: float
    route_cached: float
    http: HTTPResult | None = None


def _guard(jwk: dict[str, Any], cache_size: int) -> Guard:
    documents = {
        "/.well-known/openid-configuration": {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"},
        "/jwks": {"keys": [jwk]},
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


async def _billing(request: Request) -> PlainTextResponse:
    return PlainTextResponse("billing")


def _app(guard: Guard | None) -> Any:
    """``GET /billing``, behind the guard's ASGI middleware when there is a guard."""
    inner = Starlette(routes=[Route(PATH, _billing)])
    if guard is None:
        return inner
    return FreshnessMiddleware(inner, guard=guard, rules=[Rule(PATH, ACTION)])


def _tokens(key: keymod.SigningKey, count: int, now: int) -> list[str]:
    return [sample_access_token(key, now) for _ in range(count)]


def _cycle(items: list[T]) -> Callable[[], T]:
    """The items in turn, forever: one C-level call per item, so that the loops time the guard."""
    return itertools.cycle(items).__next__


# --- in-process, CPU time -------------------------------------------------------------------


def _cpu_rate(fn: Callable[[], object], seconds: float, batch: int = 50) -> float:
    """Calls of ``fn`` per second of this thread's CPU time, over ``seconds`` of it."""
    done = 0
    wall_limit = time.monotonic() + _WALL_FACTOR * seconds
    start = time.thread_time()
    while done < _MAX_OPS:
        for _ in range(batch):
            fn()
        done += batch
        if time.thread_time() - start >= seconds or time.monotonic() >= wall_limit:
            break
    return done / (time.thread_time() - start)


def _asgi_rate(app: Any, authorization: Callable[[], bytes | None], seconds: float) -> float:
    """Requests/s (of CPU time) of ``GET /billing`` called straight through the ASGI interface."""

    async def one() -> None:
        header = authorization()
        headers = [(b"authorization", header)] if header else []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
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
            raise BenchError(f"the route answered {status}")

    async def loop() -> float:
        done = 0
        wall_limit = time.monotonic() + _WALL_FACTOR * seconds
        start = time.thread_time()
        while done < _MAX_OPS:
            await one()
            done += 1
            if time.thread_time() - start >= seconds or time.monotonic() >= wall_limit:
                break
        return done / (time.thread_time() - start)

    return asyncio.run(loop())


# --- over HTTP ------------------------------------------------------------------------------


@contextlib.contextmanager
def _server(workdir: Path, jwk: dict[str, Any] | None) -> Iterator[ServerProcess]:
    """``python -m bench.guard --serve``: the route on a free port, protected given a key."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    last_log = ""
    for attempt in range(3):  # a few tries, in case another process takes the port
        port = free_port()
        command = [sys.executable, "-m", "bench.guard", "--serve", str(port)]
        if jwk is not None:
            command += ["--jwk", json.dumps(jwk)]
        log = workdir / f"guard-server-{port}-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        server = ServerProcess(proc, port, log)
        try:
            # 200, or 401 from the guard: either way it is up.
            if wait_ready(server, PATH, any_status=True):
                yield server
                return
            last_log = server.log_tail()
        finally:
            server.stop()
    raise BenchError(f"the guard benchmark's server did not start:\n{last_log}")


def _http_load(
    server: ServerProcess, requests: Callable[[], bytes], in_flight: int, seconds: float
) -> LoadResult:
    """A closed loop of ``in_flight`` keep-alive connections, each sending ``requests()``."""

    async def go() -> LoadResult:
        async with AsyncExitStack() as stack:
            connections = [
                await stack.enter_async_context(Connection("127.0.0.1", server.port))
                for _ in range(in_flight)
            ]

            def op_for(connection: Connection) -> Callable[[], Any]:
                async def op() -> None:
                    status, body = await connection.send(requests())
                    if status != 200:
                        raise BenchError(f"{PATH} answered {status}: {body[:200]!r}")

                return op

            return await measure(
                server,
                [op_for(c) for c in connections],
                warmup_seconds=_HTTP_WARMUP,
                seconds=seconds,
                max_requests=_MAX_OPS,
            )

    # The load generator on uvloop when it is there, as the server is: on 2 cores it shares the
    # machine with the server, and every microsecond it spends is one the server may not get.
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        return asyncio.run(go())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(go())


def _http(jwk: dict[str, Any], headers: list[str], plan: Plan) -> HTTPResult:
    in_flight = plan.concurrencies[0]
    seconds = plan.floor_seconds / 2
    rounds: dict[str, list[LoadResult]] = {"open": [], "uncached": [], "cached": []}
    with (
        tempfile.TemporaryDirectory(prefix="freshid-bench-guard-") as tmp,
        _server(Path(tmp), None) as open_server,
        _server(Path(tmp), jwk) as guarded_server,
    ):
        host = f"127.0.0.1:{open_server.port}"
        plain = request_bytes("GET", PATH, host)
        host = f"127.0.0.1:{guarded_server.port}"
        signed = [request_bytes("GET", PATH, host, {"Authorization": h}) for h in headers]
        phases: dict[str, tuple[ServerProcess, Callable[[], bytes]]] = {
            "open": (open_server, lambda: plain),
            "uncached": (guarded_server, _cycle(signed)),
            "cached": (guarded_server, lambda: signed[0]),
        }
        # Short phases, interleaved, several times: on a shared machine each phase then gets its
        # quiet moments, and the best round of each is compared.
        for _ in range(_HTTP_ROUNDS):
            for name, (server, requests) in phases.items():
                rounds[name].append(_http_load(server, requests, in_flight, seconds))
    return HTTPResult(
        in_flight,
        seconds,
        HTTPPhase(tuple(rounds["open"])),
        HTTPPhase(tuple(rounds["uncached"])),
        HTTPPhase(tuple(rounds["cached"])),
    )


def _serve(port: int, jwk: str | None) -> int:
    """The server process of the HTTP phases (see the module docstring)."""
    import uvicorn

    guard = _guard(json.loads(jwk), _SERVER_CACHE) if jwk else None
    config = uvicorn.Config(
        _app(guard),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        workers=1,
    )
    uvicorn.Server(config).run()
    return 0


# --- the benchmark --------------------------------------------------------------------------


def run(plan: Plan, now: int, *, http: bool = True) -> GuardResult:
    key = keymod.generate(now)
    count = max(2_000, int(plan.es256_round_seconds * 20_000))
    tokens = _tokens(key, count, now)

    # The raw side verifies the very tokens the guard sees, in the same order.
    def signed_parts(token: str) -> tuple[bytes, bytes]:
        header_b64, payload_b64, sig_b64 = token.split(".")
        sig = jws.b64url_decode(sig_b64)
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        return encode_dss_signature(r, s), f"{header_b64}.{payload_b64}".encode("ascii")

    next_signed = _cycle([signed_parts(t) for t in tokens])
    public_key = key.public_key

    # A cache smaller than the token list: each uncached call really misses. The Authorization
    # values are built beforehand, as a server hands them to the app: the loop times the guard.
    uncached_guard = _guard(key.public_jwk(), 16)
    cached_guard = _guard(key.public_jwk(), 1024)
    headers = [f"Bearer {t}" for t in tokens]
    next_header = _cycle(headers)
    header = headers[0]
    cached_guard.check(header, ACTION)

    def raw_verify() -> object:
        der, message = next_signed()
        public_key.verify(der, message, _ECDSA)
        return None

    def uncached() -> object:
        return uncached_guard.check(next_header(), ACTION)

    def cached() -> object:
        return cached_guard.check(header, ACTION)

    next_token = _cycle(tokens)
    check = ALGORITHMS["ES256"].bind(public_key)  # the guard's own signature check
    assert check is not None

    def floor() -> object:
        signing_input, _, signature = next_token().encode("ascii").rpartition(b".")
        if not check(signing_input, b64url_bytes(signature)):
            raise BenchError("the floor's verify failed")
        return orjson.loads(b64url_bytes(signing_input.partition(b".")[2]))

    seconds = plan.es256_round_seconds
    candidates = {"raw": raw_verify, "uncached": uncached, "floor": floor, "cached": cached}
    rates = dict.fromkeys(candidates, 0.0)
    for _ in range(plan.es256_rounds):
        for name, fn in candidates.items():
            rates[name] = max(rates[name], _cpu_rate(fn, seconds))

    raw_headers = [h.encode("latin-1") for h in headers]
    next_raw = _cycle(raw_headers)
    route_open = route_uncached = route_cached = 0.0
    for _ in range(plan.es256_rounds):
        route_open = max(route_open, _asgi_rate(_app(None), lambda: None, seconds))
        route_uncached = max(route_uncached, _asgi_rate(_app(uncached_guard), next_raw, seconds))
        route_cached = max(
            route_cached, _asgi_rate(_app(cached_guard), lambda: raw_headers[0], seconds)
        )
    return GuardResult(
        rates["raw"],
        rates["uncached"],
        rates["floor"],
        rates["cached"],
        route_open,
        route_uncached,
        route_cached,
        _http(key.public_jwk(), headers, plan) if http else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.guard", description="the freshid_guard benchmark alone"
    )
    parser.add_argument("--quick", action="store_true", help="the --quick plan")
    parser.add_argument("--no-http", action="store_true", help="in-process measurements only")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--jwk", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return _serve(args.serve, args.jwk)

    from bench.cli import guard_rows
    from bench.plan import FULL, QUICK
    from bench.report import MachineLoad, machine, table

    plan = QUICK if args.quick else FULL
    load = MachineLoad()
    started = time.time()
    try:
        result = run(plan, int(started), http=not args.no_http)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    command = " ".join(
        ["python -m bench.guard"] + ["--quick"] * args.quick + ["--no-http"] * args.no_http
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    print(f"## freshid_guard benchmark ({plan.name} run)\n")
    print(f"- command: `{command}`")
    print(f"- machine: {machine()}")
    print(f"- run: {when}, {time.time() - started:.0f} s")
    print(f"- load: {load.summary()}\n")
    print(table(guard_rows(result, plan)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
