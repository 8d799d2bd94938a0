"""Events benchmark 1: the latency of one Events API page on a store of a million events.

The store is filled in bulk, not through the outbox one event at a time: rows with a valid audit
chain (hashes computed here with :func:`freshid.events.chain.event_hash`) are inserted with
executemany on SQLite and ``COPY`` on PostgreSQL, then the chain head is set and the planner's
statistics refreshed (``ANALYZE``). The mix: 10,000 users, 100,000 sessions, one event a second,
types weighted like a busy provider (token refreshes and issues most, a reuse detection rarely).

Each scenario reads ``reps`` pages with :func:`freshid.events.api.page` in its own read
transaction (what the HTTP handler runs in a worker thread), at random cursors where that makes
sense. The floor is the raw DBAPI ``SELECT * FROM events WHERE id > ? ORDER BY id LIMIT 100``
(fetchall, no SQLAlchemy, no JSON decoding) on the same store; the HTTP row times
``GET /api/v1/events?limit=100`` against a real server process, sequentially.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from freshid.events import api as event_api
from freshid.events import chain
from freshid.storage.database import Database
from freshid.storage.tables import events
from freshid.storage.tables_events import event_chain_head

T0 = 1_700_000_000
USERS = 10_000
SESSIONS = 100_000
TYPES = (
    ("token.refreshed", 30),
    ("token.issued", 30),
    ("session.created", 15),
    ("authentication.succeeded", 12),
    ("authentication.reauthenticated", 6),
    ("authentication.failed", 4),
    ("session.revoked", 2.9),
    ("token.refresh_reuse_detected", 0.1),
)
_COLUMNS = (
    "id",
    "type",
    "occurred_at",
    "user_id",
    "session_id",
    "client_id",
    "data",
    "prev_hash",
    "hash",
)


def generate(n: int, seed: int = 1) -> Iterator[tuple[object, ...]]:
    """n chained event rows (column order: _COLUMNS), deterministic for a seed."""
    rng = random.Random(seed)
    names = [t for t, _ in TYPES]
    weights = [w for _, w in TYPES]
    prev = chain.GENESIS
    kinds = rng.choices(names, weights, k=n)
    for i in range(n):
        event_id = i + 1
        session = rng.randrange(SESSIONS)
        user = f"user{session % USERS:05d}"
        data = {"method": "password", "acr": "urn:freshid:acr:1fa", "n": i}
        row = {
            "id": event_id,
            "type": kinds[i],
            "occurred_at": T0 + i,
            "user_id": user,
            "session_id": f"sess{session:06d}",
            "client_id": "client-bench",
            "data": data,
            "prev_hash": prev,
        }
        digest = chain.event_hash(**row)  # type: ignore[arg-type]
        yield (*(row[c] for c in _COLUMNS[:-1]), digest)
        prev = digest


def fill(db: Database, n: int, progress: Callable[[str], None], batch: int = 20_000) -> float:
    """Insert n chained events in bulk; returns the seconds it took."""
    started = time.perf_counter()
    rows = generate(n)
    done = 0
    last_hash = chain.GENESIS
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        while done < n:
            chunk = [next(rows) for _ in range(min(batch, n - done))]
            if db.sqlite:
                cur.executemany(
                    f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 9)})",
                    [(*r[:6], json.dumps(r[6]), r[7], r[8]) for r in chunk],
                )
            else:
                with cur.copy(f"COPY events ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                    for r in chunk:
                        copy.write_row((*r[:6], json.dumps(r[6]), r[7], r[8]))
            done += len(chunk)
            last_hash = str(chunk[-1][8])
            if done % 200_000 == 0:
                progress(f"  {done:,} events stored")
        raw.commit()
    finally:
        raw.close()
    with db.write() as conn:
        conn.execute(event_chain_head.delete())
        conn.execute(event_chain_head.insert().values(id=1, last_id=n, last_hash=last_hash))
    raw = db.engine.raw_connection()
    try:
        raw.cursor().execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Scenario:
    name: str
    make: Callable[[random.Random, int], tuple[event_api.EventFilter, int, int]]
    """(rng, stored events) -> (filter, cursor, limit)"""


SCENARIOS = (
    Scenario("first page, no filter", lambda _r, _n: (event_api.EventFilter(), 0, 100)),
    Scenario(
        "random cursor, no filter",
        lambda r, n: (event_api.EventFilter(), r.randrange(n - 100), 100),
    ),
    Scenario("caught up (tail poll, empty page)", lambda _r, n: (event_api.EventFilter(), n, 100)),
    Scenario(
        "random cursor, limit 1000",
        lambda r, n: (event_api.EventFilter(), r.randrange(n - 1000), 1000),
    ),
    Scenario(
        "type filter, common type (30 %)",
        lambda r, n: (event_api.EventFilter(types=("token.issued",)), r.randrange(n), 100),
    ),
    Scenario(
        "type filter, rare type (0.1 %)",
        lambda r, n: (
            event_api.EventFilter(types=("token.refresh_reuse_detected",)),
            r.randrange(n // 2),
            100,
        ),
    ),
    Scenario(
        "two types (step-ups and failures, 10 %)",
        lambda r, n: (
            event_api.EventFilter(
                types=("authentication.reauthenticated", "authentication.failed")
            ),
            r.randrange(n),
            100,
        ),
    ),
    Scenario(
        "one user's events (about 100 stored)",
        lambda r, _n: (
            event_api.EventFilter(user_id=f"user{r.randrange(USERS):05d}"),
            0,
            100,
        ),
    ),
    Scenario(
        "one hour of events (time range)",
        lambda r, n: (
            event_api.EventFilter(since=(s := T0 + r.randrange(n - 3600)), until=s + 3600),
            0,
            100,
        ),
    ),
)


@dataclass(frozen=True)
class PageResult:
    name: str
    samples_ms: list[float]
    rows: int


def measure(db: Database, n: int, reps: int, seed: int = 7) -> list[PageResult]:
    out = []
    for scenario in SCENARIOS:
        rng = random.Random(seed)
        samples, rows = [], 0
        for _ in range(reps):
            flt, after, limit = scenario.make(rng, n)
            started = time.perf_counter()
            with db.read() as conn:
                page = event_api.page(conn, flt, after, limit)
            samples.append((time.perf_counter() - started) * 1000)
            rows += len(page.events)
        out.append(PageResult(scenario.name, samples, rows // reps))
    return out


def raw_floor(db: Database, n: int, reps: int, seed: int = 7) -> list[float]:
    """The same "random cursor" pages as plain DBAPI fetches: the database's own cost."""
    rng = random.Random(seed)
    mark = "?" if db.sqlite else "%s"
    sql = f"SELECT * FROM events WHERE id > {mark} ORDER BY id LIMIT 100"
    samples = []
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for _ in range(reps):
            after = rng.randrange(n - 100)
            started = time.perf_counter()
            cur.execute(sql, (after,))
            rows = cur.fetchall()
            samples.append((time.perf_counter() - started) * 1000)
            assert len(rows) == 100
            raw.rollback()
    finally:
        raw.close()
    return samples


def count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())
