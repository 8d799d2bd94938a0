"""Webhook deliveries as database rows: fan-out, claiming, and the outcome of each attempt.

**At least once.** A delivery row is created for each (endpoint, event) by the dispatcher, which
reads events forward from a cursor stored in ``webhook_dispatch_cursor`` (a keyset read that skips
nothing, because event ids follow commit order — :mod:`freshid.events.chain`), in the same
transaction that moves the cursor. A delivery stays ``pending`` until an attempt gets a 2xx, or
until its retries run out.

**Claims, safe with several workers and nodes.** Claiming a due delivery moves its
``next_attempt_at`` forward by a lease (three attempt timeouts + slack) and stamps a fresh
``claim_token``, in one short transaction: on PostgreSQL the candidate rows are locked with
``FOR UPDATE SKIP LOCKED`` so concurrent workers take different rows without waiting; on SQLite
write transactions are serialised (``BEGIN IMMEDIATE`` also across processes), and the claim is a
conditional ``UPDATE`` on the row still being due. The HTTP request happens outside any
transaction. A worker killed mid-attempt (kill -9) leaves the row pending with its lease, so the
row becomes due again when the lease expires, and is sent again with the same ``webhook-id``.
An outcome is recorded only by the claim that made the attempt (``WHERE claim_token = :token``):
a worker that outlived its lease cannot overwrite a newer attempt's result.

**Retries.** Attempt 1 is immediate; attempt ``n + 1`` is due :data:`RETRY_SCHEDULE` ``[n - 1]``
seconds after attempt ``n`` failed, each delay multiplied by a random factor in
``[1 - jitter, 1 + jitter]`` (jitter 0.2: receivers recovering from an outage are not hit by every
retry at once). With the default schedule (5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h) a
delivery is tried 9 times over about 11 hours, then marked ``failed``.

**Disabling.** A failed attempt adds one to the endpoint's failure streak; a success resets it.
An endpoint is disabled (``enabled = false``, with ``disabled_at``, ``disabled_reason`` and a
``webhook_endpoint.disabled`` event) when one of its deliveries exhausts its retries, or when its
streak reaches ``disable_after_failures`` (default 100). Disabled endpoints keep receiving
delivery rows but are not attempted; re-enabling resumes them, nothing is lost.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from freshid.events import api as event_api
from freshid.events import chain
from freshid.events import webhooks as hooks
from freshid.storage.tables import events
from freshid.storage.tables_events import (
    webhook_deliveries,
    webhook_dispatch_cursor,
    webhook_endpoints,
)

RETRY_SCHEDULE: tuple[int, ...] = (5, 30, 120, 600, 1800, 3600, 10800, 21600)
"""Seconds before each retry (before jitter): retry n waits RETRY_SCHEDULE[n - 1]."""

_CURSOR_ID = 1


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[int, ...] = RETRY_SCHEDULE
    jitter: float = 0.2
    attempt_timeout: float = 10.0
    """Seconds for one attempt, connection to status line."""
    lease_slack: int = 5
    """Seconds added to a claim's lease for the worker's own bookkeeping."""
    disable_after_failures: int = 100

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    @property
    def lease(self) -> int:
        """How long a claim holds a delivery: two rounds of attempts to wait behind (the worker
        queues claimed deliveries for its endpoint's share of the slots, then for a slot), its
        own attempt, and the slack."""
        return 3 * math.ceil(self.attempt_timeout) + self.lease_slack

    def delay(self, attempts: int, rng: random.Random | None = None) -> int:
        """Seconds to wait after failed attempt number ``attempts`` (1-based)."""
        base = self.schedule[min(attempts, len(self.schedule)) - 1]
        factor = 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0, round(base * factor))


# -- fan-out ------------------------------------------------------------------------------------


def _insert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def dispatch(conn: Connection, now: int, batch: int = 500) -> int:
    """Turn the next events into deliveries for their subscribed endpoints; returns rows made.

    Run in a write transaction. The cursor row is locked (FOR UPDATE; SQLite serialises writers),
    so two dispatchers never fan out the same events; the unique (endpoint, event) constraint
    would make a repeat harmless anyway.
    """
    endpoints = [hooks._endpoint(r) for r in conn.execute(webhook_endpoints.select())]
    if not endpoints:
        return 0
    row = conn.execute(
        sa.select(webhook_dispatch_cursor.c.last_event_id)
        .where(webhook_dispatch_cursor.c.id == _CURSOR_ID)
        .with_for_update()
    ).first()
    if row is None:
        conn.execute(
            _insert(conn)(webhook_dispatch_cursor)
            .values(id=_CURSOR_ID, last_event_id=0)
            .on_conflict_do_nothing()
        )
        row = conn.execute(
            sa.select(webhook_dispatch_cursor.c.last_event_id)
            .where(webhook_dispatch_cursor.c.id == _CURSOR_ID)
            .with_for_update()
        ).one()
    # Nothing before the oldest endpoint's start concerns anyone: skip it.
    start = max(int(row.last_event_id), min(e.start_after_event_id for e in endpoints))
    head, _ = chain.read_head(conn)
    if head <= start:
        return 0
    rows = conn.execute(
        sa.select(events.c.id, events.c.type)
        .where(events.c.id > start, events.c.id <= head)
        .order_by(events.c.id)
        .limit(batch)
    ).all()
    values = [
        {
            "endpoint_id": e.id,
            "event_id": int(r.id),
            "message_id": "msg_" + secrets.token_hex(12),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for r in rows
        for e in endpoints
        if r.id > e.start_after_event_id and e.subscribes_to(r.type)
    ]
    if values:
        conn.execute(_insert(conn)(webhook_deliveries).on_conflict_do_nothing(), values)
    last = int(rows[-1].id) if len(rows) == batch else head
    conn.execute(
        webhook_dispatch_cursor.update()
        .where(webhook_dispatch_cursor.c.id == _CURSOR_ID)
        .values(last_event_id=last)
    )
    return len(values)


@dataclass(frozen=True)
class Work:
    dispatch: bool
    """Events past the dispatch cursor, and endpoints to fan them out to."""
    due: bool
    """A pending delivery of an enabled endpoint is due."""


def pending_work(conn: Connection, now: int) -> Work:
    """A read-only look, so an idle worker polls with one read transaction, not two writes."""
    d, e = webhook_deliveries, webhook_endpoints
    oldest_start = conn.execute(sa.select(sa.func.min(e.c.start_after_event_id))).scalar()
    if oldest_start is None:
        return Work(False, False)
    cursor = conn.execute(
        sa.select(webhook_dispatch_cursor.c.last_event_id).where(
            webhook_dispatch_cursor.c.id == _CURSOR_ID
        )
    ).scalar()
    head, _ = chain.read_head(conn)
    due = conn.execute(
        sa.select(d.c.id)
        .join(e, e.c.id == d.c.endpoint_id)
        .where(d.c.status == "pending", d.c.next_attempt_at <= now, e.c.enabled.is_(True))
        .limit(1)
    ).first()
    return Work(head > max(int(cursor or 0), int(oldest_start)), due is not None)


# -- claims -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    claim_token: str
    message_id: str
    attempt: int
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes
    event_type: str = field(default="")


def claim(
    conn: Connection,
    now: int,
    policy: RetryPolicy,
    limit: int,
    *,
    busy: Mapping[str, int] | None = None,
    per_endpoint: int | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries of enabled endpoints; run in a write transaction.

    ``busy`` counts the caller's claimed deliveries per endpoint; with ``per_endpoint``, due
    deliveries of other endpoints come first once an endpoint holds that many, so one slow or
    dead endpoint cannot take every slot while others wait. Room nobody else wants still goes to
    it (the claim is work-conserving).
    """
    d, e = webhook_deliveries, webhook_endpoints
    counts: dict[str, int] = dict(busy or {})
    due = (
        sa.select(d.c.id, d.c.endpoint_id)
        .join(e, e.c.id == d.c.endpoint_id)
        .where(d.c.status == "pending", d.c.next_attempt_at <= now, e.c.enabled.is_(True))
        .order_by(d.c.next_attempt_at, d.c.id)
    )
    picked: list[int] = []
    if per_endpoint is not None:
        saturated = [ep for ep, n in counts.items() if n >= per_endpoint]
        fair = due.where(d.c.endpoint_id.not_in(saturated)) if saturated else due
        for row in conn.execute(fair.limit(limit * 4)):
            if counts.get(row.endpoint_id, 0) >= per_endpoint:
                continue
            counts[row.endpoint_id] = counts.get(row.endpoint_id, 0) + 1
            picked.append(int(row.id))
            if len(picked) == limit:
                break
    if len(picked) < limit:
        # Work-conserving: room no other endpoint wants goes to whoever has deliveries due, up
        # to twice the fair share (the worker sends at most the fair share at once).
        taken, cap = set(picked), None if per_endpoint is None else 2 * per_endpoint
        for row in conn.execute(due.limit(limit * 4)):
            if int(row.id) in taken or (cap is not None and counts.get(row.endpoint_id, 0) >= cap):
                continue
            counts[row.endpoint_id] = counts.get(row.endpoint_id, 0) + 1
            picked.append(int(row.id))
            if len(picked) == limit:
                break
    if not picked:
        return []
    # PostgreSQL: another worker may be claiming some of these rows right now; skip them rather
    # than wait. SQLite: write transactions are serialised, the clause is not rendered.
    ids = list(
        conn.execute(
            sa.select(d.c.id)
            .where(d.c.id.in_(picked), d.c.status == "pending", d.c.next_attempt_at <= now)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not ids:
        return []
    token = secrets.token_hex(16)
    conn.execute(
        d.update()
        .where(d.c.id.in_(ids), d.c.status == "pending", d.c.next_attempt_at <= now)
        .values(
            claim_token=token,
            next_attempt_at=now + policy.lease,
            attempts=d.c.attempts + 1,
            last_attempt_at=now,
        )
    )
    rows = conn.execute(
        sa.select(d.c.id, d.c.message_id, d.c.attempts, d.c.endpoint_id, d.c.event_id)
        .where(d.c.claim_token == token)
        .order_by(d.c.id)
    ).all()
    endpoints = {
        x.id: x
        for x in (
            hooks._endpoint(r)
            for r in conn.execute(e.select().where(e.c.id.in_({r.endpoint_id for r in rows})))
        )
    }
    by_id = {
        int(r.id): event_api.event_json(r._mapping)
        for r in conn.execute(
            sa.select(events).where(events.c.id.in_({int(r.event_id) for r in rows}))
        )
    }
    out = []
    for r in rows:
        endpoint, event = endpoints[r.endpoint_id], by_id.get(int(r.event_id))
        if event is None:  # the event row is gone: nothing to send (audit verify reports it)
            continue
        out.append(
            Claimed(
                int(r.id),
                token,
                r.message_id,
                int(r.attempts),
                endpoint.id,
                endpoint.url,
                tuple(endpoint.secrets_in_force(now)),
                hooks.payload(event),
                event["type"],
            )
        )
    return out


# -- outcomes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None


def complete(
    conn: Connection,
    item: Claimed,
    outcome: Outcome,
    now: int,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> None:
    """Record one attempt's outcome (only if this claim still owns the row); may disable."""
    d, e = webhook_deliveries, webhook_endpoints
    mine = sa.and_(d.c.id == item.delivery_id, d.c.claim_token == item.claim_token)
    common = {"last_status_code": outcome.status_code, "last_error": outcome.error}
    if outcome.ok:
        done = conn.execute(
            d.update()
            .where(mine)
            .values(status="succeeded", completed_at=now, claim_token=None, **common)
        )
        if done.rowcount:
            conn.execute(
                e.update()
                .where(e.c.id == item.endpoint_id)
                .values(consecutive_failures=0, failing_since=None)
            )
        return
    exhausted = item.attempt >= policy.max_attempts
    values: dict[str, Any] = (
        {"status": "failed", "completed_at": now, "claim_token": None}
        if exhausted
        else {"next_attempt_at": now + policy.delay(item.attempt, rng), "claim_token": None}
    )
    done = conn.execute(d.update().where(mine).values(**values, **common))
    if not done.rowcount:
        return
    conn.execute(
        e.update()
        .where(e.c.id == item.endpoint_id)
        .values(
            consecutive_failures=e.c.consecutive_failures + 1,
            failing_since=sa.func.coalesce(e.c.failing_since, now),
        )
    )
    streak = conn.execute(
        sa.select(e.c.consecutive_failures).where(e.c.id == item.endpoint_id)
    ).scalar()
    if exhausted:
        reason = f"a delivery failed {item.attempt} attempts"
    elif streak is not None and streak >= policy.disable_after_failures:
        reason = f"{streak} failed attempts in a row"
    else:
        return
    hooks.set_enabled(conn, item.endpoint_id, False, now, reason)


def deliveries_for(
    conn: Connection, endpoint_id: str, after: int, limit: int, statuses: Sequence[str] = ()
) -> list[dict[str, Any]]:
    d = webhook_deliveries
    query = sa.select(d).where(d.c.endpoint_id == endpoint_id, d.c.id > after)
    if statuses:
        query = query.where(d.c.status.in_(list(statuses)))
    rows = conn.execute(query.order_by(d.c.id).limit(limit)).all()
    return [
        {
            "id": int(r.id),
            "event_id": int(r.event_id),
            "webhook_id": r.message_id,
            "status": r.status,
            "attempts": int(r.attempts),
            "next_attempt_at": int(r.next_attempt_at) if r.status == "pending" else None,
            "last_attempt_at": r.last_attempt_at,
            "last_status_code": r.last_status_code,
            "last_error": r.last_error,
            "created_at": int(r.created_at),
            "completed_at": r.completed_at,
        }
        for r in rows
    ]
