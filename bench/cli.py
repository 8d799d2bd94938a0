"""``python -m bench [--quick]``: run every benchmark and print the Markdown table."""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import es256, stepup
from bench import guard as guard_bench
from bench import methods as method_bench
from bench.flows import Browser
from bench.load import LoadResult
from bench.plan import FULL, QUICK, Plan
from bench.report import MachineLoad, Row, machine, table
from bench.server import Store, postgres_store, seed, settings_for, sqlite_store, start_server
from bench.stats import BenchError, ms, rate, ratio, us
from bench.token import direct_refresh, discovery_load, make_chains, refresh_load
from freshid.methods.password import PasswordMethod
from freshid.settings import load_settings

_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def _load_cell(r: LoadResult) -> str:
    return f"{rate(r.rps)} · p50 {ms(r.latencies.p50)} · p99 {ms(r.latencies.p99)}"


def _cpu_note(r: LoadResult) -> str:
    return (
        f"{r.requests:,} requests in {r.seconds:.1f} s; server CPU {r.server_cpu_share:.2f} cores "
        f"({us(r.server_cpu_per_request_s)}/request); load generator CPU "
        f"{r.client_cpu_share:.2f} cores"
    )


def _links(step: stepup.StepUpResult) -> str:
    if not step.password_links:
        return ""
    return f' ({step.password_links} via the "Use your password" page)'


def es256_rows(r: es256.ES256Result, plan: Plan) -> list[Row]:
    how = f"best of {plan.es256_rounds} x {plan.es256_round_seconds:g} s"
    size = f"{r.message_bytes} B signing input, {r.token_bytes} B token"
    return [
        Row(
            f"ES256 sign: `jws.sign_es256` (access token, {size})",
            "-",
            f"{rate(r.sign)} ({us(1 / r.sign)}/op)",
            f"{rate(r.raw_sign)} `cryptography` ECDSA P-256 sign ({us(1 / r.raw_sign)}/op)",
            ratio(r.sign / r.raw_sign),
            f"{how}; same key, same bytes",
        ),
        Row(
            "ES256 verify: `jws.verify`",
            "-",
            f"{rate(r.verify)} ({us(1 / r.verify)}/op)",
            f"{rate(r.raw_verify)} `cryptography` ECDSA P-256 verify ({us(1 / r.raw_verify)}/op)",
            ratio(r.verify / r.raw_verify),
            f"{how}; same key, same token",
        ),
    ]


def guard_rows(r: guard_bench.GuardResult, plan: Plan) -> list[Row]:
    how = f"best of {plan.es256_rounds} x {plan.es256_round_seconds:g} s of CPU time, one core"
    rows = [
        Row(
            "guard: verify + freshness decision, token not cached (`Guard.check`)",
            "-",
            f"{rate(r.uncached)} ({us(1 / r.uncached)}/op)",
            f"{rate(r.raw_verify)} `cryptography` ECDSA P-256 verify of the same tokens "
            f"({us(1 / r.raw_verify)}/op)",
            ratio(r.uncached / r.raw_verify),
            f"{how}; every call a different FreshID access token; guard's own work "
            f"{us(1 / r.uncached - 1 / r.raw_verify)}/op (goal 0.85x)",
        ),
        Row(
            "Python floor: decode + verify + parse of the same tokens, no checks at all",
            "-",
            f"{rate(r.floor)} ({us(1 / r.floor)}/op)",
            f"{rate(r.raw_verify)} raw verify",
            ratio(r.floor / r.raw_verify),
            f"{how}; split, base64url, SHA-256, DER, the guard's prehashed verify, `orjson`: "
            f"no header, claim or freshness check, no cache; {us(1 / r.floor - 1 / r.raw_verify)}"
            "/op above the raw verify. The most any Python guard could reach",
        ),
        Row(
            "guard: cache hit + freshness decision (`Guard.check`)",
            "-",
            f"{rate(r.cached)} ({us(1 / r.cached)}/op)",
            f"{rate(r.raw_verify)} raw verify",
            ratio(r.cached / r.raw_verify),
            f"{how}; the decision still runs on every call",
        ),
        Row(
            "Starlette route behind the guard's ASGI middleware, uncached tokens, in-process",
            "-",
            f"{rate(r.route_uncached)} ({us(1 / r.route_uncached)}/request)",
            f"{rate(r.route_open)} the same route unprotected ({us(1 / r.route_open)}/request)",
            ratio(r.route_uncached / r.route_open),
            f"{how}; ASGI calls, no sockets: the route costs less than one ECDSA verify, so "
            f"this ratio is at most {ratio(r.raw_verify / (r.raw_verify + r.route_open))} "
            "(goal 0.22x)",
        ),
        Row(
            "Starlette route behind the guard's ASGI middleware, cache hits, in-process",
            "-",
            f"{rate(r.route_cached)} ({us(1 / r.route_cached)}/request)",
            f"{rate(r.route_open)} the same route unprotected",
            ratio(r.route_cached / r.route_open),
            f"{how}; ASGI calls, no sockets; the guard adds "
            f"{us(1 / r.route_cached - 1 / r.route_open)}/request (goal 0.8x)",
        ),
    ]
    if r.http is not None:
        h = r.http
        where = (
            f"uvicorn, 1 worker, own process; {h.in_flight} keep-alive connections in flight; "
            f"best of {len(h.open.rounds)} x {h.seconds:g} s, phases interleaved"
        )

        def server_cpu(phase: guard_bench.HTTPPhase) -> str:
            return (
                f"server CPU {us(phase.server_cpu_per_request_s)}/request (least of the rounds), "
                f"load generator {phase.best.client_cpu_share:.2f} cores"
            )

        rows.append(
            Row(
                "Starlette route over HTTP, unprotected (floor)",
                "-",
                _load_cell(h.open.best),
                "-",
                "floor",
                f"{where}; {server_cpu(h.open)}",
            )
        )
        for label, phase, goal in (
            ("uncached tokens", h.uncached, "0.22x"),
            ("cache hits", h.cached, "0.8x"),
        ):
            by_cpu = h.open.server_cpu_per_request_s / phase.server_cpu_per_request_s
            rows.append(
                Row(
                    f"Starlette route over HTTP behind the guard's ASGI middleware, {label}",
                    "-",
                    _load_cell(phase.best),
                    f"{rate(h.open.best.rps)} the same route unprotected",
                    ratio(phase.best.rps / h.open.best.rps),
                    f"{where}; {server_cpu(phase)}; by server CPU per request {ratio(by_cpu)} "
                    f"(goal {goal})",
                )
            )
    return rows


def method_rows(costs: list[method_bench.MethodCost], plan: Plan) -> list[Row]:
    how = f"best of {plan.es256_rounds} rounds"
    return [
        Row(
            f"method verify: {c.method}",
            "-",
            f"{rate(c.freshid)} ({us(1 / c.freshid)}/op)",
            f"{rate(c.raw)} {c.raw_name} ({us(1 / c.raw)}/op)",
            ratio(c.freshid / c.raw),
            f"{how}; the pure method core, in-process, no HTTP or SQL",
        )
        for c in costs
    ]


def store_rows(store: Store, plan: Plan, sign_rate: float | None) -> list[Row]:
    settings = load_settings(environ={})
    hasher = PasswordMethod.from_settings(settings, concurrency=1)
    progress(f"{store.name}: seeding and starting the server")
    seeded = seed(store, hasher)
    server = start_server(store)
    rows: list[Row] = []
    try:
        settings = settings_for(store, server)
        setup = Browser(server.url, seeded)
        try:
            chains = make_chains(setup, max(plan.concurrencies))
        finally:
            setup.close()
        floors: dict[int, LoadResult] = {}
        for c in plan.concurrencies:
            progress(f"{store.name}: discovery GET, {c} in flight")
            floors[c] = discovery_load(server, plan, c)
        rss_before = server.rss_kib()
        refreshes: dict[int, LoadResult] = {}
        for c in plan.concurrencies:
            progress(f"{store.name}: refresh grant, {c} in flight")
            refreshes[c] = refresh_load(server, seeded, chains, plan, c)
        rss_after, rss_peak = server.rss_kib(), server.peak_rss_kib()
        progress(f"{store.name}: refresh unit of work in-process")
        direct = direct_refresh(settings, seeded, chains, plan)
        progress(f"{store.name}: password step-up rounds")
        step = stepup.run(server, seeded, settings, plan)
    finally:
        server.stop()

    for c in plan.concurrencies:
        floor, refresh = floors[c], refreshes[c]
        rows.append(
            Row(
                f"discovery GET (framework floor), {c} in flight",
                store.name,
                _load_cell(floor),
                "-",
                "floor",
                _cpu_note(floor),
            )
        )
        rows.append(
            Row(
                f"refresh grant, {c} in flight, each rotating its chain",
                store.name,
                _load_cell(refresh),
                f"{rate(floor.rps)} discovery GET, same server, {c} in flight",
                ratio(refresh.rps / floor.rps),
                _cpu_note(refresh) + "; 0 errors",
            )
        )
    best = max(refreshes.values(), key=lambda r: r.rps)
    signing = f"; 2 ES256 signatures take {us(2 / sign_rate)}" if sign_rate else ""
    extra = best.server_cpu_per_request_s - direct.cpu_per_request_s
    extra_note = (
        f"the HTTP path adds {us(extra)} of server CPU per refresh"
        if extra > 0
        else "no measurable extra server CPU on the HTTP path (difference within noise)"
    )
    rows.append(
        Row(
            "refresh grant vs its SQL + signing work alone",
            store.name,
            f"{rate(best.rps)} over HTTP ({best.concurrency} in flight); "
            f"{us(best.server_cpu_per_request_s)} server CPU/refresh",
            f"{rate(direct.rps)}: the endpoint's unit of work called in-process, one at a time; "
            f"{us(direct.per_request_s)}/refresh, {us(direct.cpu_per_request_s)} of it CPU"
            f"{signing}",
            ratio(best.rps / direct.rps),
            f"{direct.requests:,} in-process refreshes (client auth, grant SQL, both tokens, "
            f"commit; no HTTP, no event loop, no thread hop); {extra_note}",
        )
    )
    overhead = step.total.p50 - step.argon2.p50
    rows.append(
        Row(
            "password step-up round trip (prompt=login → page → password → code → /token)",
            store.name,
            f"p50 {ms(step.total.p50)} · p99 {ms(step.total.p99)}",
            f"argon2id verify p50 {ms(step.argon2.p50)} · p99 {ms(step.argon2.p99)} "
            f"({step.argon2_params}, {len(step.argon2.samples_ms)} runs)",
            f"+{ms(overhead)} beyond argon2 (p50)",
            f"{step.rounds} sequential rounds{_links(step)}; p50 per step: authorize "
            f"{ms(step.authorize.p50)}, page {ms(step.page.p50)}, password POST "
            f"{ms(step.password.p50)}, /token {ms(step.token.p50)}; CPU per round: server "
            f"{ms(step.server_cpu_ms)}, load generator (httpx) {ms(step.client_cpu_ms)}",
        )
    )
    refreshed = sum(r.requests for r in refreshes.values())
    rows.append(
        Row(
            "server RSS (VmRSS) before → after the refresh load",
            store.name,
            f"{_mib(rss_before)} → {_mib(rss_after)}",
            "-",
            f"{(rss_after - rss_before) / 1024:+.1f} MiB",
            f"peak (VmHWM) {_mib(rss_peak)}; {refreshed:,} measured refreshes (plus warm-up)",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="FreshID benchmarks against raw limits"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a shorter run (about 20 s; 40 s with PostgreSQL)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("FRESHID_BENCH_POSTGRES_URL"),
        metavar="URL",
        help="also run on a throwaway database on this PostgreSQL server "
        "(default: $FRESHID_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    postgres_url = None if args.no_postgres else args.postgres
    command = "python -m bench" + (" --quick" if args.quick else "")
    rows: list[Row] = []
    started = time.time()
    load = MachineLoad()
    try:
        progress("ES256 sign/verify")
        signing = es256.run(plan, int(time.time()))
        rows += es256_rows(signing, plan)
        sign_rate = signing.sign
        progress("freshid_guard: verification, cache hits, protected route")
        rows += guard_rows(guard_bench.run(plan, int(time.time())), plan)
        progress("authentication methods: verify cost against raw primitives")
        rows += method_rows(method_bench.run(plan), plan)
        with sqlite_store() as store:
            rows += store_rows(store, plan, sign_rate)
        if postgres_url:
            with postgres_store(postgres_url) as store:
                rows += store_rows(store, plan, sign_rate)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    elapsed = time.time() - started
    print(f"## FreshID benchmarks ({plan.name} run)\n")
    print(f"- command: `{command}`" + (" with PostgreSQL" if postgres_url else ""))
    print(f"- machine: {machine()}")
    print(f"- run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {elapsed:.0f} s")
    print(f"- load: {load.summary()}\n")
    print(table(rows))
    return 0
