"""Small measuring helpers: bounded rate loops, percentiles, number formatting."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class BenchError(RuntimeError):
    """The benchmark could not measure what it meant to (a request failed, the server died...)."""


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ops_per_second(
    fn: Callable[[], object], seconds: float, max_ops: int, batch: int = 50
) -> float:
    """Call ``fn`` in batches until ``seconds`` have passed or ``max_ops`` calls were made."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while done < max_ops:
        for _ in range(batch):
            fn()
        done += batch
        if time.perf_counter() >= deadline:
            break
    return done / (time.perf_counter() - start)


def best_of(
    candidates: dict[str, Callable[[], object]], rounds: int, seconds: float, max_ops: int
) -> dict[str, float]:
    """Best rate of each candidate over ``rounds`` rounds, candidates interleaved round by round
    so that drift of the machine (frequency, neighbours) hits them alike."""
    best = dict.fromkeys(candidates, 0.0)
    for _ in range(rounds):
        for name, fn in candidates.items():
            best[name] = max(best[name], ops_per_second(fn, seconds, max_ops))
    return best


@dataclass(frozen=True)
class Latencies:
    samples_ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples_ms, 99)


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


def ms(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def us(value_seconds: float) -> str:
    return f"{value_seconds * 1e6:,.0f} µs"


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"
