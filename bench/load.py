"""A closed-loop load generator: N workers, each sending its next request when the previous one
has answered, over keep-alive connections. Bounded by request count and by wall time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bench.server import ServerProcess
from bench.stats import Latencies
from freshid import collector

Op = Callable[[], Awaitable[None]]
_GRACE = 60.0
"""Extra wall time allowed for in-flight requests to finish before the phase is abandoned."""


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    seconds: float
    latencies: Latencies
    server_cpu_s: float
    client_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu_share(self) -> float:
        """Cores of server CPU used on average during the phase (1.0 = one core busy)."""
        return self.server_cpu_s / self.seconds

    @property
    def client_cpu_share(self) -> float:
        return self.client_cpu_s / self.seconds

    @property
    def server_cpu_per_request_s(self) -> float:
        return self.server_cpu_s / self.requests


async def _closed_loop(
    ops: Sequence[Op], seconds: float, max_requests: int
) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    started = 0
    start = time.perf_counter()
    stop_at = start + seconds

    async def worker(op: Op) -> None:
        nonlocal started
        while started < max_requests and time.perf_counter() < stop_at:
            started += 1
            t = time.perf_counter()
            await op()
            latencies.append((time.perf_counter() - t) * 1000)

    await asyncio.wait_for(asyncio.gather(*(worker(op) for op in ops)), seconds + _GRACE)
    return len(latencies), time.perf_counter() - start, latencies


async def measure(
    server: ServerProcess,
    ops: Sequence[Op],
    *,
    warmup_seconds: float,
    seconds: float,
    max_requests: int,
) -> LoadResult:
    """Warm up, then run the measured phase; one op per in-flight request."""
    # This process's own full garbage collections paused its loop for 50-70 ms (the servers'
    # tails would include them): what it holds so far is kept out of them (freshid.collector).
    collector.freeze_startup_objects()
    await _closed_loop(ops, warmup_seconds, max_requests)
    server.check_alive()
    cpu0, client0 = server.cpu_seconds(), time.process_time()
    n, elapsed, latencies = await _closed_loop(ops, seconds, max_requests)
    cpu1, client1 = server.cpu_seconds(), time.process_time()
    server.check_alive()
    return LoadResult(
        len(ops), n, elapsed, Latencies(tuple(latencies)), cpu1 - cpu0, client1 - client0
    )
