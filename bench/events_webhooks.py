"""Events benchmark 3: webhook deliveries per second to a local receiver.

The receiver is its own process (``python -m bench.events_webhooks --receiver PORT``): uvicorn
with a bare ASGI app that reads the body and answers 204, on 127.0.0.1. One endpoint subscribes to
``session.created``; N events are written through the outbox (1,000 per transaction), then one
:class:`freshid.events.worker.Worker` in this process fans them out, claims, signs (Standard
Webhooks HMAC-SHA256), POSTs and records every outcome, until all N deliveries have succeeded.

The worker gives one endpoint at most half its slots, so with ``concurrency`` c it keeps c/2
requests in flight to the receiver. The raw limit is the same ``httpx.AsyncClient`` POSTing the
same number of bodies to the same receiver with c/2 in flight, with no database and no signing.
The signing rate of :func:`freshid.events.webhooks.sign_headers` is given in the notes.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import sqlalchemy as sa

from bench.server import free_port
from bench.stats import BenchError
from freshid.events import outbox
from freshid.events import webhooks as hooks
from freshid.events.catalog import EventType
from freshid.events.delivery import RetryPolicy
from freshid.events.worker import Worker
from freshid.storage.database import Database
from freshid.storage.tables_events import webhook_deliveries

REPO_ROOT = Path(__file__).resolve().parent.parent


async def _receiver_app(scope: dict[str, object], receive: object, send: object) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()  # type: ignore[operator]
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})  # type: ignore[operator]
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})  # type: ignore[operator]
                return
    more = True
    while more:
        message = await receive()  # type: ignore[operator]
        more = bool(message.get("more_body"))
    await send({"type": "http.response.start", "status": 204, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.events_webhooks", "--receiver", str(self.port)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}/hook"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(self.url, content=b"{}", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise BenchError("the webhook receiver did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass(frozen=True)
class WebhookResult:
    deliveries: int
    concurrency: int
    seconds: float
    cpu_seconds: float
    raw_rate: float
    sign_rate: float
    body_bytes: int
    failed_attempts: int
    """Attempts that failed and were retried on the schedule (counted in the time)."""
    failures: str

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds


def _write_events(db: Database, n: int) -> None:
    now = int(time.time())
    done = 0
    while done < n:
        with db.write() as conn:
            for i in range(min(1000, n - done)):
                outbox.record(
                    conn,
                    EventType.SESSION_CREATED,
                    now,
                    user_id=f"user{i:05d}",
                    session_id=f"sess{done + i:06d}",
                    client_id="client-bench",
                    method="password",
                )
        done += min(1000, n - done)


def _succeeded(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(webhook_deliveries)
                .where(webhook_deliveries.c.status == "succeeded")
            ).scalar_one()
        )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _raw(url: str, body: bytes, n: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        next_i = 0
        started = time.perf_counter()

        async def one() -> None:
            nonlocal next_i
            while next_i < n:
                next_i += 1
                r = await client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
                if r.status_code != 204:
                    raise BenchError(f"receiver answered {r.status_code}")

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(one)
        return n / (time.perf_counter() - started)


def measure(db: Database, n: int, concurrency: int, max_seconds: float) -> WebhookResult:
    receiver = Receiver()
    try:
        with db.write() as conn:
            _, secret = hooks.create(
                conn, receiver.url, [EventType.SESSION_CREATED.value], "bench", int(time.time())
            )
        _write_events(db, n)
        worker = Worker(
            db,
            lambda: int(time.time()),
            RetryPolicy(attempt_timeout=10),
            concurrency=concurrency,
            batch=concurrency * 4,
            poll_interval=0.05,
        )
        cpu0, started = _cpu(), time.perf_counter()

        async def drive() -> None:
            # The production loop (Worker.run), stopped once every delivery is recorded.
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run, stop, max_seconds)
                deadline = time.monotonic() + max_seconds
                while time.monotonic() < deadline:
                    if await anyio.to_thread.run_sync(_succeeded, db) >= n:
                        break
                    await anyio.sleep(0.05)
                stop.set()

        anyio.run(drive)
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu0
        delivered = _succeeded(db)
        if delivered < n:
            raise BenchError(f"only {delivered} of {n} deliveries succeeded in {max_seconds} s")
        body = b'{"type":"session.created","timestamp":"2026-01-01T00:00:00Z","data":{}}'
        body = body + b" " * max(0, 420 - len(body))  # about the size of a real payload
        # The worker sends at most half its slots to one endpoint: the raw loop keeps as many
        # requests in flight as the worker really did.
        raw = anyio.run(_raw, receiver.url, body, n, worker.per_endpoint)
        msg_id, now, k = "msg_0123456789abcdef01234567", int(time.time()), 20_000
        started = time.perf_counter()
        for _ in range(k):
            hooks.sign_headers([secret], msg_id, now, body)
        sign_rate = k / (time.perf_counter() - started)
        failures = ", ".join(f"{k} x{v}" for k, v in sorted(worker.stats.failures.items()))
        return WebhookResult(
            n, concurrency, seconds, cpu, raw, sign_rate, len(body), worker.stats.failed, failures
        )
    finally:
        receiver.stop()
        with db.write() as conn:  # the next measurement starts with no endpoint but its own
            for e in hooks.all_endpoints(conn):
                hooks.delete(conn, e.id, int(time.time()))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--receiver", type=int, required=True, help="serve the receiver on PORT")
    args = parser.parse_args()
    import uvicorn

    os.environ.pop("FRESHID_DATABASE_URL", None)
    uvicorn.run(
        _receiver_app, host="127.0.0.1", port=args.receiver, log_level="warning", access_log=False
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
