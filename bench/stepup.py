"""Benchmark 3: a full password step-up round trip, next to a bare argon2id verification with
FreshID's parameters measured in the same run.

A signed-in browser asks for ``prompt=login`` (OIDC Core §3.1.2.1: the user must prove it again
whatever the session's age): GET /authorize → GET the "Confirm it's you" page → POST the password
→ the redirect with the code → POST /token. The server runs in another process, so its clock
cannot be shifted; ``prompt=login`` forces the re-authentication at once instead. Rounds run
back to back in one signed-in browser; a round that gets a code without the re-auth page is an
error, not a fast round. When the page offers another method first, the round includes the
"Use your password" page, as a user's would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from argon2 import PasswordHasher, Type

from bench.flows import Browser, FlowResult
from bench.plan import Plan
from bench.server import Seeded, ServerProcess
from bench.stats import BenchError, Latencies
from freshid.settings import Settings


@dataclass(frozen=True)
class StepUpResult:
    rounds: int
    total: Latencies
    authorize: Latencies
    page: Latencies
    password: Latencies
    token: Latencies
    argon2: Latencies
    argon2_params: str
    server_cpu_ms: float
    """Server CPU per round (argon2 included)."""
    client_cpu_ms: float
    """This process's CPU per round: httpx and the page parsing (it inflates the latencies)."""
    password_links: int
    """Rounds that had to open "Use your password" because another method was offered first."""


def _ms(results: list[FlowResult], attr: str) -> Latencies:
    return Latencies(tuple(getattr(r, attr) * 1000 for r in results))


def argon2_verify_times(settings: Settings, password: str, runs: int) -> Latencies:
    """argon2id verification with the server's own parameters, as ``PasswordMethod`` sets them."""
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )
    stored = hasher.hash(password)
    hasher.verify(stored, password)  # warm-up: first touch of the memory
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        hasher.verify(stored, password)
        samples.append((time.perf_counter() - t) * 1000)
    return Latencies(tuple(samples))


def run(server: ServerProcess, seeded: Seeded, settings: Settings, plan: Plan) -> StepUpResult:
    browser = Browser(server.url, seeded)
    try:
        if browser.code_flow().page != "login":
            raise BenchError("a fresh browser was not asked to sign in")
        browser.code_flow(prompt="login")  # warm-up round, not counted
        results: list[FlowResult] = []
        cpu0, client0 = server.cpu_seconds(), time.process_time()
        deadline = time.monotonic() + plan.stepup_seconds
        while len(results) < plan.stepup_rounds and time.monotonic() < deadline:
            result = browser.code_flow(prompt="login")
            if result.page != "reauth":
                raise BenchError(f"prompt=login did not show the re-auth page ({result.page})")
            results.append(result)
        server_cpu = server.cpu_seconds() - cpu0
        client_cpu = time.process_time() - client0
        server.check_alive()
    finally:
        browser.close()
    if not results:
        raise BenchError("no step-up round completed")
    argon2 = argon2_verify_times(settings, seeded.password, plan.argon2_runs)
    params = (
        f"argon2id m={settings.argon2_memory_kib} KiB, t={settings.argon2_time_cost}, "
        f"p={settings.argon2_parallelism}"
    )
    return StepUpResult(
        len(results),
        _ms(results, "total_s"),
        _ms(results, "authorize_s"),
        _ms(results, "page_s"),
        _ms(results, "password_s"),
        _ms(results, "token_s"),
        argon2,
        params,
        server_cpu * 1000 / len(results),
        client_cpu * 1000 / len(results),
        sum(r.password_link for r in results),
    )
