"""``python -m bench.events_run [--quick]``: the events benchmarks, as one Markdown table.

Events page latency at 1M stored events (:mod:`bench.events_page`), audit verification rate
against raw SHA-256 (:mod:`bench.events_audit`), webhook deliveries per second to a local receiver
(:mod:`bench.events_webhooks`). SQLite always; PostgreSQL too when ``FRESHID_BENCH_POSTGRES_URL``
is set or ``--postgres URL`` is given, on a throwaway database (as ``python -m bench`` does).
Every loop is bounded by a count and a wall time; only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import httpx

from bench import events_audit, events_page, events_webhooks
from bench.report import MachineLoad, Row, machine, table
from bench.server import Store, postgres_store, sqlite_store, start_server
from bench.stats import ms, percentile, rate, ratio
from freshid.admin import keys as key_store
from freshid.storage import migrate
from freshid.storage.database import Database

_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    events: int
    page_reps: int
    http_reps: int
    webhook_deliveries: int
    webhook_concurrency: tuple[int, ...]
    webhook_seconds: float


FULL = Plan(1_000_000, 300, 300, 5_000, (8, 32), 120.0)
QUICK = Plan(100_000, 60, 60, 1_000, (8,), 60.0)


def _lat(samples: list[float]) -> str:
    return f"p50 {ms(percentile(samples, 50))} · p99 {ms(percentile(samples, 99))}"


def page_rows(store: Store, db: Database, plan: Plan) -> list[Row]:
    progress(f"{store.name}: storing {plan.events:,} chained events in bulk")
    fill_s = events_page.fill(db, plan.events, progress)
    stored = events_page.count(db)
    progress(f"{store.name}: {stored:,} events in {fill_s:.1f} s; timing pages")
    floor = events_page.raw_floor(db, plan.events, plan.page_reps)
    rows = []
    for r in events_page.measure(db, plan.events, plan.page_reps):
        floor_cell = "-"
        ratio_cell = "-"
        if r.name == "random cursor, no filter":
            floor_cell = f"{_lat(floor)}: raw DBAPI `SELECT * ... WHERE id > ? LIMIT 100`"
            ratio_cell = ratio(percentile(r.samples_ms, 50) / percentile(floor, 50))
        rows.append(
            Row(
                f"events page: {r.name}",
                store.name,
                _lat(r.samples_ms),
                floor_cell,
                ratio_cell,
                f"{stored:,} events stored; {plan.page_reps} pages, {r.rows} rows each on "
                "average; `events.api.page` in a read transaction, in-process",
            )
        )
    progress(f"{store.name}: GET /api/v1/events over HTTP")
    with db.write() as conn:
        _, key = key_store.create(conn, "bench", frozenset({"events:read"}), int(time.time()))
    server = start_server(store)
    try:
        import random

        rng = random.Random(3)
        samples = []
        with httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}/api/v1",
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        ) as client:
            for _ in range(plan.http_reps):
                params = {"limit": "100"}
                started = time.perf_counter()
                cursor_after = rng.randrange(plan.events - 100)
                from freshid.events.api import encode_cursor

                params["cursor"] = encode_cursor(cursor_after)
                response = client.get("/events", params=params)
                samples.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200 or len(response.json()["data"]) != 100:
                    raise RuntimeError(f"events page failed: {response.status_code}")
    finally:
        server.stop()
    rows.append(
        Row(
            "GET /api/v1/events?limit=100 (random cursor), over HTTP",
            store.name,
            _lat(samples),
            f"{_lat(floor)}: raw DBAPI page",
            ratio(percentile(samples, 50) / percentile(floor, 50)),
            f"{plan.http_reps} sequential requests, one keep-alive connection, admin key "
            "checked on each; server: `python -m bench.serve`",
        )
    )
    return rows


def audit_rows(store: Store, db: Database) -> list[Row]:
    progress(f"{store.name}: verifying the audit chain")
    r = events_audit.measure(db)
    if not r.ok:
        raise RuntimeError("the chain did not verify")
    verify_rate = r.events / r.verify_seconds
    return [
        Row(
            "audit verify: `freshid audit verify` (whole chain)",
            store.name,
            f"{rate(verify_rate)} ({r.events:,} events in {r.verify_seconds:.1f} s)",
            f"{rate(r.raw_sha256_rate)} raw `hashlib.sha256` of the same canonical bytes "
            f"({r.mean_bytes:.0f} B mean)",
            ratio(verify_rate / r.raw_sha256_rate),
            f"canonical JSON + SHA-256 of rows already in memory: {rate(r.in_memory_rate)}; "
            "the rest is reading rows (batches of 5,000)",
        )
    ]


def webhook_rows(store: Store, db: Database, plan: Plan) -> list[Row]:
    rows = []
    for concurrency in plan.webhook_concurrency:
        progress(
            f"{store.name}: {plan.webhook_deliveries:,} webhook deliveries, {concurrency} in flight"
        )
        r = events_webhooks.measure(db, plan.webhook_deliveries, concurrency, plan.webhook_seconds)
        rows.append(
            Row(
                f"webhook deliveries, worker concurrency {concurrency} ({concurrency // 2} in "
                "flight to the one endpoint): dispatch, claim, sign, POST, record",
                store.name,
                f"{rate(r.rate)} ({r.deliveries:,} in {r.seconds:.1f} s)",
                f"{rate(r.raw_rate)} raw httpx POSTs to the same receiver, "
                f"{concurrency // 2} in flight",
                ratio(r.rate / r.raw_rate),
                f"worker CPU {r.cpu_seconds / r.deliveries * 1e6:,.0f} µs/delivery "
                f"({r.cpu_seconds / r.seconds:.2f} cores); Standard Webhooks signing alone "
                f"{rate(r.sign_rate)}; receiver: uvicorn, 204; failed attempts (retried): "
                f"{r.failed_attempts}{f' ({r.failures})' if r.failures else ''}",
            )
        )
    return rows


def run_store(store: Store, plan: Plan) -> list[Row]:
    db = Database(store.url)
    try:
        migrate.upgrade(db)
        rows = page_rows(store, db, plan)
        rows += audit_rows(store, db)
        rows += webhook_rows(store, db, plan)
        return rows
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events_run")
    parser.add_argument("--quick", action="store_true", help="100k events, fewer samples")
    parser.add_argument("--postgres", default=os.environ.get("FRESHID_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    load = MachineLoad()
    started = time.time()
    rows: list[Row] = []
    with sqlite_store() as store:
        rows += run_store(store, plan)
    if args.postgres and not args.no_postgres:
        with postgres_store(args.postgres) as store:
            rows += run_store(store, plan)
    name = "quick" if args.quick else "full"
    print(f"### FreshID events benchmarks ({name} run)\n")
    print(f"- machine: {machine()}")
    print(
        f"- run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
        f"{time.time() - started:.0f} s"
    )
    print(f"- load: {load.summary()}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
