"""How long each benchmark runs: the full plan and the ``--quick`` one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    es256_round_seconds: float
    """Wall time of one timed round of one signing/verifying operation."""
    es256_rounds: int
    """Rounds per operation, raw and FreshID interleaved; the best round counts."""
    concurrencies: tuple[int, ...]
    """In-flight requests for the token endpoint and the discovery floor."""
    warmup_seconds: float
    load_seconds: float
    """Measured wall time of one refresh load phase."""
    floor_seconds: float
    """Measured wall time of one discovery load phase."""
    max_requests: int
    """Upper bound on the requests of one load phase, whatever the wall time."""
    direct_requests: int
    direct_seconds: float
    stepup_rounds: int
    stepup_seconds: float
    """Wall-time bound on the step-up rounds."""
    argon2_runs: int


FULL = Plan(
    name="full",
    es256_round_seconds=1.0,
    es256_rounds=3,
    concurrencies=(4, 16),
    warmup_seconds=1.5,
    load_seconds=10.0,
    floor_seconds=5.0,
    max_requests=100_000,
    direct_requests=3_000,
    direct_seconds=3.0,
    stepup_rounds=50,
    stepup_seconds=60.0,
    argon2_runs=20,
)

QUICK = Plan(
    name="quick",
    es256_round_seconds=0.3,
    es256_rounds=3,
    concurrencies=(4, 16),
    warmup_seconds=0.5,
    load_seconds=2.5,
    floor_seconds=1.5,
    max_requests=20_000,
    direct_requests=1_000,
    direct_seconds=1.0,
    stepup_rounds=15,
    stepup_seconds=20.0,
    argon2_runs=8,
)
