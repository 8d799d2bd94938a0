"""``python -m bench.soak [--minutes N] [--store sqlite|postgresql]``: a bounded soak.

One FreshID server process (``bench.serve``, uvicorn, one worker, on a free loopback port, the
store seeded by :func:`bench.server.seed`) takes a mixed workload from a few concurrent workers
(threads of this process, each a closed loop: its next operation starts when the previous one has
answered) for N minutes:

- **sign-in**: a fresh :class:`bench.flows.Browser` (no cookies, its own connection) runs a full
  code flow: GET /authorize, the sign-in page, POST the password, the redirect with the code,
  POST /token. A code flow that does not show the sign-in page is an error.
- **step-up**: one signed-in browser re-proves its password on the same session, alternating
  ``prompt=login`` and ``max_age=0`` (as :mod:`bench.stepup` does); a round that is not shown the
  "Confirm it's you" page is an error.
- **refresh**: refresh-token rotations, each request rotating its own chain (chains from real code
  flows, :func:`bench.token.make_chains`); anything but a 200 with a new refresh token is an error.
- **events**: ``GET /api/v1/events`` with an admin API key (``events:read``), tailing the log with
  the cursor like a consumer would (every fifth read is a filtered first page instead). Each page
  must continue the hash chain of the previous one (``prev_hash`` = the last ``hash`` seen, ids
  increasing), and at the end the tail must hold at least one ``session.created``,
  ``authentication.reauthenticated`` and ``token.refreshed`` event for every sign-in, step-up and
  refresh the workers saw succeed.

On SQLite the sampler also notes the largest size of the WAL file: a soak fails if it passes
:data:`WAL_LIMIT_BYTES` (the log must be rewound, not grow with every commit).

Any other status or shape is an error (the first few are printed with the status and a body
snippet), as is an ERROR line or a traceback in the server's log; its other lines (such as the
cause of a 503) are reported as warnings. Every loop stops itself at the wall-time deadline
and at a request count (:class:`SoakPlan`). The loops are not :func:`bench.load.measure`: that
stops at the first failure and times one operation, while a soak counts errors, recovers (a new
browser, a new chain) and keeps going.

Memory: the sampler reads the server's RSS (``VmRSS`` of its process) every 0.1 s and keeps the
smallest reading of every 0.5-2 s (a 300th of the run). The first part of the run is warm-up
(20 % of it, at most 60 s: pools, statement caches and the allocator settle). Over the rest RSS
is read through its lower envelope (:func:`baseline`): a password hash holds argon2id's 19 MiB
working memory for the 20-60 ms it runs, and RSS read then is memory in use, not growth. The
verdict (:func:`memory_verdict`) is **flat** when both

- the least-squares slope of the envelope is under :data:`SLOPE_LIMIT_MIB_PER_MIN` (1 MiB/min) or,
  when less than 3 minutes are measured, what it adds up to is under :data:`NOISE_FLOOR_MIB`
  (3 MiB), and
- the end of the envelope (median of its last 3 points) is less than :data:`GROWTH_LIMIT` (10 %)
  above its warm start (median of its first 3 points).

Why these bounds: the server keeps no per-request state in memory (sessions, tokens and events live
in the database; its caches are bounded: clients, SQLAlchemy's compiled statements, SQLite's page
cache of 1 MiB per connection, :data:`freshid.storage.database.PAGE_CACHE_KIB`), so after warm-up
its memory should stay put. 1 MiB/min is 1.4 GiB a day, a leak any operator would notice; at 200
requests/s it is 90 bytes kept per request. In the first minutes that slope cannot be told from
caches filling as the store grows: on this machine the envelope rose by 2 MiB over the first 3
minutes of a 10-minute run and by 0.3-1.3 MiB over the 40 measured seconds of a 50-second run
(``tests/soak``), then stayed flat. On a faster day of the same machine it rose by 2.4-4.2 MiB
in those 40 seconds (and 3.2 MiB in a CI run of ``tests/soak``, warmed up for 60 of its 100
seconds) while ``tracemalloc`` found the Python heap flat (+0.4 MB over 100 s). Most of that was
not a cache: it was SQLite's WAL index, a file mapped into every connection (RSS counts it as
``RssFile``), which grows with the WAL, and the WAL never stopped growing under this load (1.3 GB
after 3 minutes; see :mod:`freshid.storage.checkpoints`, which now rewinds it). With the WAL
kept near 64 MiB, ``RssFile`` stayed at 31.3 MiB through a 3-minute run and ``tests/soak``
measured +0.1 and +0.3 MiB over its 40 seconds. A run measured for less than 3 minutes is
allowed 3 MiB in all; it still fails on steady growth above about 4.5 MiB/min (6 MiB/min over
40 s adds up to 4 MiB). The 10 % bound catches a late jump that a long run's slope would
dilute.

The allocator matters here. With glibc's defaults, the first argon2 buffer is mapped and unmapped,
which raises malloc's mmap threshold above 19 MiB; from then on every smaller allocation comes
from the heaps, which fragment: RSS ~150 MiB and creeping (+1.3 MiB/min through 10 minutes, with
argon2 on its fixed pool of threads). The server therefore restarts itself under
:data:`freshid.allocator.TUNABLES` (the threshold pinned at 4 MiB, mapped blocks on transparent
huge pages): each hash maps its buffer and gives it back, RSS is about 110 MiB and flat, and a
hash costs what it did. Allocator variables in this process's environment (the server inherits
them) replace those; the report names the settings of the run (:func:`allocator`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from bench.flows import Browser
from bench.report import MachineLoad, machine
from bench.server import (
    Seeded,
    ServerProcess,
    Store,
    postgres_store,
    seed,
    sqlite_store,
    start_server,
)
from bench.stats import BenchError, Latencies, ms
from bench.token import Chain, make_chains
from freshid.admin import keys as key_store
from freshid.allocator import TUNABLES, tuned_environment
from freshid.events.api import encode_cursor
from freshid.methods.password import PasswordMethod
from freshid.settings import load_settings
from freshid.storage.checkpoints import JOURNAL_SIZE_LIMIT
from freshid.storage.database import Database, sqlite_path

SIGN_IN, STEP_UP, REFRESH, EVENTS = "sign-in", "step-up", "refresh", "events"
KINDS = (SIGN_IN, STEP_UP, REFRESH, EVENTS)
SLOPE_LIMIT_MIB_PER_MIN = 1.0
GROWTH_LIMIT = 0.10
NOISE_FLOOR_MIB = 3.0
_READ_SECONDS = 0.1
"""How often the sampler reads the server's RSS (about 50 µs of this process's CPU a read)."""
_WINDOW = 5
"""Consecutive RSS samples of which the smallest is one point of the baseline."""
_END_POINTS = 3
"""Baseline points whose median is the warm (first measured) and the end RSS."""
WAL_LIMIT_BYTES = 2 * JOURNAL_SIZE_LIMIT
"""The largest SQLite WAL a soak accepts: the size the checkpointer rewinds it at and cuts it
back to (:mod:`freshid.storage.checkpoints`), plus as much again for what is written before a
restart gets through. Without the restarts, a soak grew it by about 7 MiB a second."""
_FIRST_ERRORS = 5
_EVENTS_PAGE = 100
_CAUGHT_UP_PAUSE = 0.2
"""Seconds the event reader waits after an empty tail page, as a polling consumer would."""
_ERROR_PAUSE = 0.2
_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SoakPlan:
    seconds: float
    warmup_seconds: float
    sample_seconds: float
    workers: dict[str, int]
    max_ops: int
    """Operations per worker, whatever the wall time (far above what the deadline allows)."""
    refresh_chains: int = 4
    """Refresh-token chains per refresh worker, rotated in turn."""

    @classmethod
    def for_seconds(cls, seconds: float, warmup_seconds: float | None = None) -> SoakPlan:
        return cls(
            seconds=seconds,
            warmup_seconds=min(0.2 * seconds, 60.0) if warmup_seconds is None else warmup_seconds,
            sample_seconds=min(max(seconds / 300, 0.5), 2.0),
            workers={SIGN_IN: 1, STEP_UP: 1, REFRESH: 2, EVENTS: 1},
            max_ops=max(1000, int(seconds * 200)),
        )


# --- recording ---------------------------------------------------------------------------------


@dataclass
class KindStats:
    ops: int = 0
    requests: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


class Recorder:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.kinds = {kind: KindStats() for kind in (*KINDS, "server")}

    def request(self, kind: str) -> None:
        with self.lock:
            self.kinds[kind].requests += 1

    def ok(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.kinds[kind].ops += 1
            self.kinds[kind].latencies_ms.append(seconds * 1000)

    def error(self, kind: str, message: str) -> None:
        with self.lock:
            stats = self.kinds[kind]
            stats.errors += 1
            if len(stats.first_errors) < _FIRST_ERRORS:
                at = time.monotonic() - self.started
                stats.first_errors.append(f"at {at:.1f} s: {message}")

    def ops(self, kind: str) -> int:
        with self.lock:
            return self.kinds[kind].ops


class Traced:
    """An httpx response hook: counts a kind's requests and keeps the last response, so an error
    can say which status and body the server answered with."""

    def __init__(self, recorder: Recorder, kind: str) -> None:
        self.recorder, self.kind = recorder, kind
        self.last: httpx.Response | None = None

    def __call__(self, response: httpx.Response) -> None:
        self.recorder.request(self.kind)
        self.last = response

    def attach(self, client: httpx.Client) -> httpx.Client:
        client.event_hooks["response"] = [*client.event_hooks["response"], self]
        return client

    def describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}"
        last = self.last
        if last is not None:
            try:
                body = last.text[:200].replace("\n", " ")
            except httpx.ResponseNotRead:
                body = "(body not read)"
            text += f" | last response: {last.request.method} {last.url.path} -> "
            text += f"{last.status_code} {body!r}"
        return text


# --- the workers -------------------------------------------------------------------------------


@dataclass
class Context:
    server: ServerProcess
    seeded: Seeded
    admin_key: str
    plan: SoakPlan
    recorder: Recorder
    stop: threading.Event
    deadline: float

    def running(self, done: int) -> bool:
        return (
            done < self.plan.max_ops and time.monotonic() < self.deadline and not self.stop.is_set()
        )


def _browser(ctx: Context, traced: Traced) -> Browser:
    browser = Browser(ctx.server.url, ctx.seeded)
    traced.attach(browser.http)
    return browser


def _check_tokens(tokens: dict[str, Any]) -> None:
    for name in ("access_token", "id_token", "refresh_token"):
        if not isinstance(tokens.get(name), str):
            raise BenchError(f"the token response has no {name}")


def _loop(ctx: Context, kind: str, traced: Traced, op: Callable[[], float | None]) -> None:
    """Run ``op`` until the deadline or the request bound; an exception is an error, after which
    ``op`` must recover by itself (it is called again). ``op`` may return a pause to take before
    the next operation (not part of its latency)."""
    done = 0
    while ctx.running(done):
        done += 1
        started = time.perf_counter()
        try:
            pause = op()
        except (BenchError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            ctx.recorder.error(kind, traced.describe(exc))
            ctx.stop.wait(_ERROR_PAUSE)
            continue
        ctx.recorder.ok(kind, time.perf_counter() - started)
        if pause:
            ctx.stop.wait(pause)


def sign_in_worker(ctx: Context) -> None:
    traced = Traced(ctx.recorder, SIGN_IN)

    def op() -> None:
        browser = _browser(ctx, traced)
        try:
            result = browser.code_flow()
        finally:
            browser.close()
        if result.page != "login":
            raise BenchError(f"a fresh browser was not asked to sign in ({result.page})")
        _check_tokens(result.tokens)

    _loop(ctx, SIGN_IN, traced, op)


def step_up_worker(ctx: Context) -> None:
    traced = Traced(ctx.recorder, STEP_UP)
    state: dict[str, Browser] = {}
    rounds = 0

    def op() -> None:
        nonlocal rounds
        try:
            browser = state.get("browser")
            if browser is None:
                browser = state["browser"] = _browser(ctx, traced)
                if browser.code_flow().page != "login":
                    raise BenchError("the step-up browser was not asked to sign in")
            rounds += 1
            extra = {"prompt": "login"} if rounds % 2 else {"max_age": "0"}
            result = browser.code_flow(**extra)
            if result.page != "reauth":
                raise BenchError(f"{extra} did not show the re-auth page ({result.page})")
        except BaseException:
            failed = state.pop("browser", None)  # sign in again on the next round
            if failed is not None:
                failed.close()
            raise
        _check_tokens(result.tokens)

    try:
        _loop(ctx, STEP_UP, traced, op)
    finally:
        if "browser" in state:
            state["browser"].close()


def refresh_worker(ctx: Context) -> None:
    traced = Traced(ctx.recorder, REFRESH)
    browser = _browser(ctx, traced)
    chains: list[Chain] = []
    turn = 0

    def op() -> None:
        nonlocal turn
        if len(chains) < ctx.plan.refresh_chains:
            # The first time, and after a failed rotation (the chain's state is unknown then).
            chains.extend(make_chains(browser, ctx.plan.refresh_chains - len(chains)))
        turn = (turn + 1) % len(chains)
        chain = chains[turn]
        response = browser.http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": chain.token},
            headers={"Authorization": browser.auth_header},
        )
        if response.status_code != 200:
            chains.pop(turn)
            raise BenchError(f"refresh answered {response.status_code}")
        tokens = response.json()
        new = tokens.get("refresh_token")
        if not isinstance(new, str) or new == chain.token:
            chains.pop(turn)
            raise BenchError("the refresh token was not rotated")
        _check_tokens(tokens)
        chain.token = new

    try:
        _loop(ctx, REFRESH, traced, op)
    finally:
        browser.close()


class EventTail:
    """A consumer tailing ``/api/v1/events`` from the start: checks that every page continues the
    hash chain of the previous one, and counts the event types it has seen."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.cursor: str | None = None
        self.last_id = 0
        self.last_hash: str | None = None
        self.seen: Counter[str] = Counter()

    def read_page(self) -> bool:
        """One page at the cursor; returns whether more are waiting."""
        params = {"limit": str(_EVENTS_PAGE)}
        if self.cursor is not None:
            params["cursor"] = self.cursor
        response = self.http.get("/events", params=params)
        if response.status_code != 200:
            raise BenchError(f"events page answered {response.status_code}")
        body = response.json()
        for event in body["data"]:
            if event["id"] <= self.last_id:
                raise BenchError(f"event {event['id']} came after event {self.last_id}")
            if self.last_hash is not None and event["prev_hash"] != self.last_hash:
                raise BenchError(f"event {event['id']} does not continue the hash chain")
            self.last_id, self.last_hash = event["id"], event["hash"]
            self.seen[event["type"]] += 1
        self.cursor = str(body["next_cursor"])
        return bool(body["has_more"])

    def filtered_page(self, rng: random.Random) -> None:
        types = rng.choice(
            ["authentication.reauthenticated", "session.created,token.issued", "token.refreshed"]
        )
        after = rng.randrange(self.last_id + 1)
        response = self.http.get(
            "/events", params={"type": types, "cursor": encode_cursor(after), "limit": "50"}
        )
        if response.status_code != 200:
            raise BenchError(f"filtered events page answered {response.status_code}")
        wanted = set(types.split(","))
        for event in response.json()["data"]:
            if event["type"] not in wanted or event["id"] <= after:
                raise BenchError(f"the {types} filter returned event {event['id']}")


def _events_client(ctx: Context, traced: Traced) -> httpx.Client:
    client = httpx.Client(
        base_url=ctx.server.url + "/api/v1",
        headers={"authorization": f"Bearer {ctx.admin_key}"},
        timeout=30,
    )
    return traced.attach(client)


def events_worker(ctx: Context, tail: EventTail, traced: Traced) -> None:
    rng = random.Random(7)
    reads = 0

    def op() -> float | None:
        nonlocal reads
        reads += 1
        if reads % 5 == 0:
            tail.filtered_page(rng)
            return None
        return None if tail.read_page() else _CAUGHT_UP_PAUSE

    _loop(ctx, EVENTS, traced, op)


def drain(tail: EventTail, recorder: Recorder, traced: Traced) -> None:
    """Read the rest of the log once the writers have stopped (bounded by the pages it can hold),
    then check the reader saw an event for each operation that succeeded."""
    pages = 0
    limit = sum(recorder.kinds[k].requests for k in KINDS) // _EVENTS_PAGE * 10 + 100
    try:
        while tail.read_page():
            pages += 1
            if pages > limit:
                raise BenchError(f"the event log did not end after {limit} pages")
    except (BenchError, httpx.HTTPError, ValueError, KeyError) as exc:
        recorder.error(EVENTS, traced.describe(exc))
        return
    for kind, event_type in (
        (SIGN_IN, "session.created"),
        (STEP_UP, "authentication.reauthenticated"),
        (REFRESH, "token.refreshed"),
    ):
        done, seen = recorder.ops(kind), tail.seen[event_type]
        if seen < done:
            recorder.error(EVENTS, f"{done} {kind} operations succeeded but {seen} {event_type}")


# --- memory ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryVerdict:
    warm_kib: float
    end_kib: float
    slope_mib_per_min: float
    baseline_min_kib: float
    baseline_max_kib: float
    samples: int
    measured_seconds: float

    @property
    def growth(self) -> float:
        """End RSS over warm RSS, minus one."""
        return (self.end_kib - self.warm_kib) / self.warm_kib

    @property
    def fitted_growth_mib(self) -> float:
        """What the slope adds up to over the measured part."""
        return self.slope_mib_per_min * self.measured_seconds / 60

    @property
    def slope_ok(self) -> bool:
        allowed = max(SLOPE_LIMIT_MIB_PER_MIN * self.measured_seconds / 60, NOISE_FLOOR_MIB)
        return self.fitted_growth_mib < allowed

    @property
    def flat(self) -> bool:
        return self.slope_ok and self.growth < GROWTH_LIMIT

    def summary(self) -> str:
        return (
            f"RSS warm {self.warm_kib / 1024:.1f} MiB → end {self.end_kib / 1024:.1f} MiB "
            f"({self.growth * 100:+.1f} %), slope {self.slope_mib_per_min:+.2f} MiB/min "
            f"({self.fitted_growth_mib:+.1f} MiB over {self.measured_seconds:.0f} s), max-min "
            f"{(self.baseline_max_kib - self.baseline_min_kib) / 1024:.1f} MiB "
            f"({self.samples} samples)"
        )


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx if sxx else 0.0


def baseline(samples: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The lower envelope: the smallest RSS of each run of :data:`_WINDOW` consecutive samples
    (at the run's middle time), then the median of each point and its neighbours. A reading
    taken while a password hash's buffer is mapped is memory in use, not growth; the median
    drops the rare run in which every reading fell on a hash."""
    runs = []
    for i in range(0, len(samples) - _WINDOW + 1, _WINDOW):
        run = samples[i : i + _WINDOW]
        runs.append((run[_WINDOW // 2][0], min(kib for _, kib in run)))
    if len(runs) < 3:
        return runs
    out = []
    for i, (t, _) in enumerate(runs):
        j = min(max(i - 1, 0), len(runs) - 3)
        out.append((t, median(kib for _, kib in runs[j : j + 3])))
    return out


def memory_verdict(samples: list[tuple[float, int]], warmup_seconds: float) -> MemoryVerdict:
    """The verdict on (seconds since the start, RSS KiB) samples, over those after warm-up;
    slope, warm and end RSS are taken on the lower envelope (:func:`baseline`)."""
    measured = [(t, float(kib)) for t, kib in samples if t >= warmup_seconds]
    points = baseline(measured)
    if len(points) < 2 * _END_POINTS:
        raise BenchError(f"too few memory samples after warm-up ({len(measured)})")
    values = [kib for _, kib in points]
    return MemoryVerdict(
        warm_kib=median(values[:_END_POINTS]),
        end_kib=median(values[-_END_POINTS:]),
        slope_mib_per_min=_slope(points) * 60 / 1024,
        baseline_min_kib=min(values),
        baseline_max_kib=max(values),
        samples=len(measured),
        measured_seconds=measured[-1][0] - measured[0][0],
    )


class MemorySampler(threading.Thread):
    """Reads RSS every :data:`_READ_SECONDS` and keeps, for every ``every`` seconds, the smallest
    and the largest reading, and the largest size of the SQLite WAL file (``wal``) seen; stops
    everything if the server dies."""

    def __init__(
        self,
        server: ServerProcess,
        every: float,
        started: float,
        stop: threading.Event,
        wal: Path | None = None,
    ) -> None:
        super().__init__(name="soak-rss", daemon=True)
        self.server, self.every, self.started, self.stop = server, every, started, stop
        self.wal = wal
        self.wal_peak_bytes = 0
        self.samples: list[tuple[float, int]] = []
        """(seconds since the start, smallest RSS KiB of the interval)"""
        self.peaks: list[int] = []
        """The largest RSS KiB of each interval."""
        self.failures: list[str] = []

    def _read(self) -> int:
        self.server.check_alive()
        return self.server.rss_kib()

    def _read_wal(self) -> None:
        if self.wal is not None:
            with contextlib.suppress(FileNotFoundError):
                self.wal_peak_bytes = max(self.wal_peak_bytes, self.wal.stat().st_size)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                t = time.monotonic()
                readings = [self._read()]
                while time.monotonic() < t + self.every and not self.stop.wait(_READ_SECONDS):
                    readings.append(self._read())
                self.samples.append((t - self.started, min(readings)))
                self.peaks.append(max(readings))
                self._read_wal()
        except (BenchError, OSError) as exc:
            self.failures.append(str(exc))
            self.stop.set()


# --- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindResult:
    kind: str
    ops: int
    requests: int
    errors: int
    first_errors: tuple[str, ...]
    latencies: Latencies


@dataclass(frozen=True)
class SoakResult:
    store: str
    plan: SoakPlan
    seconds: float
    kinds: tuple[KindResult, ...]
    memory: MemoryVerdict
    peak_rss_kib: int
    server_cpu_s: float
    events_seen: int
    server_warnings: tuple[str, ...]
    """The lines of the server's log that are neither errors nor INFO."""
    rss_samples: tuple[tuple[float, int, int], ...]
    """(seconds since the start, smallest and largest RSS KiB of the interval), warm-up
    included."""
    wal_peak_bytes: int | None = None
    """On SQLite, the largest the WAL file was seen during the run."""

    @property
    def wal_bounded(self) -> bool:
        return self.wal_peak_bytes is None or self.wal_peak_bytes <= WAL_LIMIT_BYTES

    @property
    def errors(self) -> int:
        return sum(k.errors for k in self.kinds)

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.memory.flat and self.wal_bounded

    def kind(self, name: str) -> KindResult:
        return next(k for k in self.kinds if k.kind == name)


def _admin_key(store: Store) -> str:
    db = Database(store.url)
    try:
        with db.write() as conn:
            _, key = key_store.create(
                conn, "soak", frozenset({key_store.Scope.EVENTS_READ.value}), int(time.time())
            )
    finally:
        db.dispose()
    return key


def _server_log(server: ServerProcess, recorder: Recorder) -> list[str]:
    """Read the server's log (it logs at level warning). Each traceback and ERROR line is an
    error; returns the other lines, such as ``database unavailable (...)``, the warning behind a
    503 (FreshID's logger has no handler there, so Python prints its warnings bare)."""
    try:
        lines = server.log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    notes: list[str] = []
    error: str | None = None
    in_traceback = False
    for line in lines:
        if in_traceback:
            if line and not line[0].isspace():  # the exception, after the indented frames
                recorder.error("server", f"server log: {error} ... {line}"[:400])
                in_traceback, error = False, None
        elif line.startswith("Traceback"):
            in_traceback, error = True, error or line
        elif line.startswith("ERROR"):
            if error is not None:
                recorder.error("server", f"server log: {error}"[:400])
            error = line
        elif line.strip() and not line.startswith("INFO"):
            notes.append(line[:300])
    if error is not None:
        recorder.error("server", f"server log: {error}"[:400])
    return notes


def _guarded(recorder: Recorder, kind: str, worker: Callable[[], None]) -> None:
    """A worker that stops on something its loop does not expect is an error too."""
    try:
        worker()
    except Exception as exc:
        recorder.error(kind, f"the worker stopped: {exc!r}")


def soak(store: Store, plan: SoakPlan) -> SoakResult:
    """Seed ``store``, start a server on it, run the mixed workload for ``plan.seconds``."""
    settings = load_settings(environ={})
    hasher = PasswordMethod.from_settings(settings, concurrency=1)
    if plan.workers.get(EVENTS, 0) > 1:
        raise BenchError("one events worker at most: it is the log's one consumer")
    seeded = seed(store, hasher)
    admin_key = _admin_key(store)
    server = start_server(store)
    recorder = Recorder()
    stop = threading.Event()
    try:
        cpu0 = server.cpu_seconds()
        recorder.started = started = time.monotonic()
        ctx = Context(server, seeded, admin_key, plan, recorder, stop, started + plan.seconds)
        events_traced = Traced(recorder, EVENTS)
        events_http = _events_client(ctx, events_traced)
        tail = EventTail(events_http)
        targets: dict[str, Callable[[], None]] = {
            SIGN_IN: lambda: sign_in_worker(ctx),
            STEP_UP: lambda: step_up_worker(ctx),
            REFRESH: lambda: refresh_worker(ctx),
            EVENTS: lambda: events_worker(ctx, tail, events_traced),
        }
        threads = [
            threading.Thread(
                target=_guarded, args=(recorder, kind, targets[kind]), name=f"soak-{kind}-{i}"
            )
            for kind in KINDS
            for i in range(plan.workers.get(kind, 0))
        ]
        for thread in threads:
            thread.start()
        path = sqlite_path(store.url) if store.name == "sqlite" else None
        wal = Path(f"{path}-wal") if path else None
        sampler = MemorySampler(server, plan.sample_seconds, started, stop, wal)
        sampler.start()
        progress(f"{store.name}: soak running for {plan.seconds:.0f} s on {server.url}")
        next_report = started + 60
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=1.0)
            if time.monotonic() >= next_report:
                next_report += 60
                counts = ", ".join(f"{k} {recorder.ops(k):,}" for k in KINDS)
                progress(f"{store.name}: {counts}; RSS {server.rss_kib() / 1024:.1f} MiB")
        # The end sample is taken as the workers stop, before the final drain of the event log.
        stop.set()
        sampler.join()
        seconds = time.monotonic() - started
        with contextlib.closing(events_http):
            drain(tail, recorder, events_traced)
        server_cpu = server.cpu_seconds() - cpu0
        peak = server.peak_rss_kib()
        for failure in sampler.failures:
            recorder.error("server", failure)
    finally:
        stop.set()
        server.stop()
    warnings = _server_log(server, recorder)
    memory = memory_verdict(sampler.samples, plan.warmup_seconds)
    kinds = tuple(
        KindResult(
            kind,
            s.ops,
            s.requests,
            s.errors,
            tuple(s.first_errors),
            Latencies(tuple(s.latencies_ms)),
        )
        for kind, s in recorder.kinds.items()
        if kind in KINDS or s.errors
    )
    return SoakResult(
        store.name,
        plan,
        seconds,
        kinds,
        memory,
        peak,
        server_cpu,
        sum(tail.seen.values()),
        tuple(warnings),
        tuple(
            (t, low, high) for (t, low), high in zip(sampler.samples, sampler.peaks, strict=True)
        ),
        sampler.wal_peak_bytes if wal else None,
    )


# --- the report --------------------------------------------------------------------------------

_NOTES = {
    SIGN_IN: "fresh browser: /authorize, sign-in page, password POST, code redemption",
    STEP_UP: "same session, `prompt=login` and `max_age=0` alternately; password re-proof",
    REFRESH: "refresh grant, each request rotating its own chain",
    EVENTS: "`GET /api/v1/events` tailing with the cursor (every 5th: a filtered page); "
    "hash chain checked page to page",
    "server": "the server process: its log and liveness",
}


def allocator() -> str:
    """The server's allocator settings: this process's environment, which it inherits, plus the
    tunables it sets itself when that names none (:mod:`freshid.allocator`)."""
    tuned = [
        f"`{name}={value}`"
        for name, value in sorted(os.environ.items())
        if name.startswith("MALLOC_") or name == "GLIBC_TUNABLES"
    ]
    if tuned_environment(os.environ) is not None:
        tuned.append(f"`GLIBC_TUNABLES={TUNABLES}` (set by the server, freshid.allocator)")
    return ", ".join(tuned) if tuned else "glibc malloc, default settings"


def render(result: SoakResult, command: str, started: float, load: str) -> str:
    m = result.memory
    lines = [
        f"#### Soak: {result.store}, {result.plan.seconds / 60:g} min",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}; server allocator: {allocator()}",
        f"- run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
        f"{result.seconds:.0f} s of load; workers: "
        + ", ".join(f"{k} {n}" for k, n in result.plan.workers.items()),
        f"- load: {load}",
        "",
        "| operation | done | HTTP requests | errors | rate | p50 | p99 | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in result.kinds:
        lat = k.latencies
        cells = (
            k.kind,
            f"{k.ops:,}",
            f"{k.requests:,}",
            f"{k.errors:,}",
            f"{k.ops / result.seconds:,.1f}/s",
            ms(lat.p50) if lat.samples_ms else "-",
            ms(lat.p99) if lat.samples_ms else "-",
            _NOTES[k.kind],
        )
        lines.append("| " + " | ".join(cells) + " |")
    total_ops = sum(k.ops for k in result.kinds)
    total_requests = sum(k.requests for k in result.kinds)
    lines.append(
        f"| **all** | {total_ops:,} | {total_requests:,} | {result.errors:,} "
        f"| {total_requests / result.seconds:,.0f} req/s | | | "
        f"server CPU {result.server_cpu_s / result.seconds:.2f} cores on average; "
        f"{result.events_seen:,} events read through the API |"
    )
    lines += [
        "",
        f"- memory (server RSS read every {_READ_SECONDS:g} s, the lowest of every "
        f"{result.plan.sample_seconds:g} s kept; measured after {result.plan.warmup_seconds:.0f} s "
        f"of warm-up): {m.summary()}; peak (VmHWM) "
        f"{result.peak_rss_kib / 1024:.1f} MiB",
        f"- verdict: **{'flat' if m.flat else 'NOT flat'}** (limits: slope < "
        f"{SLOPE_LIMIT_MIB_PER_MIN:g} MiB/min, or under {NOISE_FLOOR_MIB:g} MiB in all when "
        f"less than {NOISE_FLOOR_MIB / SLOPE_LIMIT_MIB_PER_MIN:g} min are measured; end less "
        f"than {GROWTH_LIMIT * 100:.0f} % above warm); errors: **{result.errors}**; warnings "
        f"in the server's log: {len(result.server_warnings)}",
    ]
    if result.wal_peak_bytes is not None:
        lines.append(
            f"- SQLite WAL file: at most {result.wal_peak_bytes / 2**20:.1f} MiB during the run "
            f"(limit {WAL_LIMIT_BYTES / 2**20:.0f} MiB): "
            f"**{'bounded' if result.wal_bounded else 'NOT bounded'}**"
        )
    return "\n".join(lines)


def print_errors(result: SoakResult) -> None:
    for k in result.kinds:
        if k.errors:
            print(f"{k.kind}: {k.errors} errors; the first ones:", file=sys.stderr)
            for line in k.first_errors:
                print(f"  {line}", file=sys.stderr)
    if result.server_warnings:
        kinds = Counter(
            re.sub(r"/interaction/[^/ ]+", "/interaction/{id}", line)
            for line in result.server_warnings
        )
        print(f"server log: {len(result.server_warnings)} warnings:", file=sys.stderr)
        for line, count in kinds.most_common(_FIRST_ERRORS):
            print(f"  {count} x {line}", file=sys.stderr)


@contextlib.contextmanager
def _store(name: str, postgres_url: str | None) -> Iterator[Store]:
    if name == "sqlite":
        with sqlite_store() as store:
            yield store
        return
    if not postgres_url:
        raise BenchError("--store postgresql needs FRESHID_BENCH_POSTGRES_URL or --postgres URL")
    with postgres_store(postgres_url) as store:
        yield store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description="A bounded soak of one FreshID server."
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="soak duration (default 10)")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("FRESHID_BENCH_POSTGRES_URL"),
        metavar="URL",
        help="the PostgreSQL server for --store postgresql (a throwaway database is created on "
        "it; default: $FRESHID_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--rss-csv", metavar="FILE", help="write the RSS samples here")
    args = parser.parse_args(argv)
    if args.minutes < 0.5:
        parser.error("--minutes: at least 0.5 (the memory verdict needs the samples)")
    plan = SoakPlan.for_seconds(args.minutes * 60)
    started = time.time()
    load = MachineLoad()
    try:
        with _store(args.store, args.postgres) as store:
            result = soak(store, plan)
    except BenchError as exc:
        print(f"bench.soak: {exc}", file=sys.stderr)
        return 1
    command = f"python -m bench.soak --minutes {args.minutes:g} --store {args.store}"
    print_errors(result)
    if args.rss_csv:
        with open(args.rss_csv, "w") as out:
            out.write("seconds,min_rss_kib,max_rss_kib\n")
            out.writelines(f"{t:.1f},{low},{high}\n" for t, low, high in result.rss_samples)
    print(render(result, command, started, load.summary()))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
