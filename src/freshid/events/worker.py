"""The webhook worker: fan out, claim, send, record — in a loop, inside ``freshid serve`` or alone.

The loop is a small pipeline. It claims due deliveries only up to its free capacity
(``concurrency`` attempts in flight), so a claimed delivery is sent at once and its lease
(:mod:`freshid.events.delivery`) covers the attempt; each attempt runs as its own task, bounded by
the attempt timeout, so a slow or dead endpoint holds one slot, not the whole batch. Outcomes go
to a recorder task that writes every outcome waiting at that moment in one transaction. Database
work runs in a worker thread (the engine is synchronous), one statement batch at a time.

Several workers, in one process or many, on one node or many, can run against one database:
claims keep them apart. A worker that stops (or dies) with attempts in flight leaves them to
their leases: they are sent again, with the same ``webhook-id``.

Logs name the endpoint id, delivery id and status only: never the URL (it may embed a token),
the body or the signature.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from freshid.events import delivery
from freshid.events.delivery import Claimed, Outcome, RetryPolicy
from freshid.events.webhooks import sign_headers
from freshid.storage.database import Database

log = logging.getLogger("freshid.webhooks")

USER_AGENT = "FreshID-Webhooks/1"
_DRAIN_LIMIT = 64 * 1024
T = TypeVar("T")
Result = tuple[Claimed, Outcome]


@dataclass
class WorkerStats:
    ticks: int = 0
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: int = 0
    last_error: str | None = field(default=None)
    failures: Counter[str] = field(default_factory=Counter)
    """Failed attempts by cause: ``timeout``, an httpx error name or ``HTTP <status>``."""


class Worker:
    def __init__(
        self,
        db: Database,
        now: Callable[[], int],
        policy: RetryPolicy | None = None,
        *,
        concurrency: int = 8,
        batch: int = 32,
        poll_interval: float = 1.0,
    ) -> None:
        self.db = db
        self.now = now
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.batch = batch
        self.poll_interval = poll_interval
        self.stats = WorkerStats()
        self._limiter = anyio.CapacityLimiter(1)
        # At most half the slots for one endpoint: a dead one cannot starve the others.
        self.per_endpoint = max(1, concurrency // 2)
        self._busy: Counter[str] = Counter()
        self._per_endpoint_slots: dict[str, anyio.Semaphore] = {}

    def _endpoint_slots(self, endpoint_id: str) -> anyio.Semaphore:
        """An endpoint's share of the slots: a slow or dead one holds at most half of them."""
        sem = self._per_endpoint_slots.get(endpoint_id)
        if sem is None:
            if len(self._per_endpoint_slots) > 10_000:  # endpoints come and go: stay bounded
                self._per_endpoint_slots = {
                    k: v for k, v in self._per_endpoint_slots.items() if k in self._busy
                }
            sem = self._per_endpoint_slots[endpoint_id] = anyio.Semaphore(self.per_endpoint)
        return sem

    async def _db(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    # -- database steps (each its own short transaction) ----------------------------------------

    def _look(self) -> delivery.Work:
        with self.db.read() as conn:
            return delivery.pending_work(conn, self.now())

    def _dispatch(self) -> int:
        with self.db.write() as conn:
            return delivery.dispatch(conn, self.now())

    def _claim(self, limit: int, busy: dict[str, int]) -> list[Claimed]:
        with self.db.write() as conn:
            return delivery.claim(
                conn, self.now(), self.policy, limit, busy=busy, per_endpoint=self.per_endpoint
            )

    def _record(self, results: list[Result]) -> None:
        with self.db.write() as conn:
            for item, outcome in results:
                delivery.complete(conn, item, outcome, self.now(), self.policy)

    async def _claim_due(self, limit: int) -> list[Claimed]:
        """Fan out new events if there are any, then claim up to ``limit`` due deliveries."""
        self.stats.ticks += 1
        work = await self._db(self._look)
        if work.dispatch:
            await self._db(self._dispatch)
        if not (work.due or work.dispatch) or limit <= 0:
            return []
        busy = dict(self._busy)  # a snapshot: the thread must not see it change
        claimed = await self._db(lambda: self._claim(limit, busy))
        for item in claimed:
            self._busy[item.endpoint_id] += 1  # released when its attempt ends
        return claimed

    # -- HTTP -----------------------------------------------------------------------------------

    async def _send(self, client: httpx.AsyncClient, item: Claimed) -> Outcome:
        headers = {
            **sign_headers(item.secrets, item.message_id, self.now(), item.body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            with anyio.fail_after(self.policy.attempt_timeout):
                async with client.stream(
                    "POST", item.url, content=item.body, headers=headers
                ) as response:
                    status = response.status_code
                    # A receiver's answer is its status code. A short body is drained so the
                    # connection goes back to the pool; a long one is not read (the connection
                    # is closed instead).
                    drained = 0
                    async for chunk in response.aiter_raw():
                        drained += len(chunk)
                        if drained > _DRAIN_LIMIT:
                            break
        except TimeoutError:
            return Outcome(False, None, "timeout")
        except httpx.HTTPError as exc:
            return Outcome(False, None, type(exc).__name__)
        if 200 <= status < 300:
            return Outcome(True, status, None)
        return Outcome(False, status, f"HTTP {status}")

    async def _attempt(self, client: httpx.AsyncClient, item: Claimed) -> Outcome:
        try:
            outcome = await self._send(client, item)
        finally:
            self._busy[item.endpoint_id] -= 1
            if self._busy[item.endpoint_id] <= 0:
                del self._busy[item.endpoint_id]
        self.stats.attempts += 1
        if outcome.ok:
            self.stats.succeeded += 1
        else:
            self.stats.failed += 1
            self.stats.failures[outcome.error or "unknown"] += 1
        log.info(
            "webhook delivery %d to endpoint %s attempt %d: %s",
            item.delivery_id,
            item.endpoint_id,
            item.attempt,
            outcome.status_code or outcome.error,
        )
        return outcome

    def client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(self.policy.attempt_timeout)
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        return httpx.AsyncClient(
            timeout=timeout, limits=limits, follow_redirects=False, trust_env=False
        )

    # -- one round, for tests and tools ---------------------------------------------------------

    async def tick(self, client: httpx.AsyncClient) -> int:
        """Claim one batch, send all of it, record the outcomes; returns the attempts made."""
        claimed = await self._claim_due(self.batch)
        if not claimed:
            return 0
        sem = anyio.Semaphore(self.concurrency)
        results: list[Result] = []

        async def one(item: Claimed) -> None:
            async with sem:
                results.append((item, await self._attempt(client, item)))

        async with anyio.create_task_group() as tg:
            for item in claimed:
                tg.start_soon(one, item)
        await self._db(lambda: self._record(results))
        return len(claimed)

    # -- the loop -------------------------------------------------------------------------------

    async def _recorder(self, outcomes: MemoryObjectReceiveStream[Result]) -> None:
        async with outcomes:
            async for first in outcomes:
                batch = [first]
                while True:
                    try:
                        batch.append(outcomes.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                try:
                    await self._db(functools.partial(self._record, batch))
                except Exception as exc:  # leases bring these deliveries back: at least once
                    self.stats.errors += 1
                    self.stats.last_error = type(exc).__name__
                    log.warning("recording webhook outcomes failed: %s", type(exc).__name__)

    async def run(self, stop: anyio.Event | None = None, max_seconds: float | None = None) -> None:
        """Work until ``stop`` is set (or ``max_seconds`` pass); errors are logged, not fatal.

        Up to ``concurrency`` attempts run at once, at most half of them to one endpoint, and up
        to ``concurrency`` more wait, claimed, for a slot, so claims come in batches rather than
        one per freed slot. A claimed delivery waits at most two rounds of attempts, which its
        lease allows for (:attr:`RetryPolicy.lease`).
        """
        deadline = math.inf if max_seconds is None else time.monotonic() + max_seconds
        send, receive = anyio.create_memory_object_stream[Result](math.inf)
        slots = anyio.Semaphore(self.concurrency)
        pending = 0  # claimed and not yet attempted to the end
        slot_free = anyio.Event()

        async def deliver(
            client: httpx.AsyncClient, item: Claimed, out: MemoryObjectSendStream[Result]
        ) -> None:
            nonlocal pending
            try:
                async with out, self._endpoint_slots(item.endpoint_id), slots:
                    await out.send((item, await self._attempt(client, item)))
            finally:
                pending -= 1
                slot_free.set()

        def stopping() -> bool:
            return (stop is not None and stop.is_set()) or time.monotonic() >= deadline

        async with self.client() as client, anyio.create_task_group() as tg:
            tg.start_soon(self._recorder, receive)
            async with send:
                while not stopping():
                    claimed: list[Claimed] = []
                    if pending <= self.concurrency:
                        try:
                            claimed = await self._claim_due(
                                min(self.batch, 2 * self.concurrency - pending)
                            )
                        except Exception as exc:  # a database blip must not end the worker
                            self.stats.errors += 1
                            self.stats.last_error = type(exc).__name__
                            log.warning("webhook worker step failed: %s", type(exc).__name__)
                    for item in claimed:
                        pending += 1
                        tg.start_soon(deliver, client, item, send.clone())
                    if claimed and pending <= self.concurrency:
                        continue  # more may be due right away
                    # Wait for room (when busy) or for the next poll (when idle).
                    slot_free = anyio.Event()
                    wait = min(self.poll_interval, max(0.0, deadline - time.monotonic()))
                    with anyio.move_on_after(wait):
                        if pending > self.concurrency:
                            await slot_free.wait()
                        elif stop is not None:
                            await stop.wait()
                        else:
                            await anyio.sleep(wait)
            # Stopping: claimed deliveries are attempted (each attempt is bounded by the attempt
            # timeout) and their outcomes recorded; then the recorder ends with the stream.
            with anyio.move_on_after(2 * self.policy.attempt_timeout + 1):
                while pending:
                    slot_free = anyio.Event()
                    await slot_free.wait()


@asynccontextmanager
async def background_worker(
    db: Database, now: Callable[[], int], *, enabled: bool = True
) -> AsyncIterator[Worker | None]:
    """Run a :class:`Worker` as a background task for the duration of the block (app lifespan)."""
    if not enabled:
        yield None
        return
    worker = Worker(db, now)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run, stop)
        try:
            yield worker
        finally:
            stop.set()
            # Server shutdown does not wait for slow receivers: attempts in flight are abandoned
            # and their leases bring them back (at least once).
            tg.cancel_scope.cancel()
