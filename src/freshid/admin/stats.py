"""The numbers behind the operator's dashboard, read from the events, grants, interactions and
sessions tables. Read-only; every scan is bounded.

For each sensitive action in a period:

- **allowed on a fresh proof**: grants bound to the action (RFC 9396, ``grants.action``) that were
  issued without a step-up for it, i.e. its grants minus its step-ups;
- **needed a step-up**: ``authentication.reauthenticated`` events naming the action;
- **step-up failed**: ``authentication.failed`` events with ``reauthentication`` and the action;
- **abandoned**: interactions for the action that expired without completing;
- **proof age at the moment of the action**: ``grants.created_at - grants.auth_time`` of its
  grants, as a histogram.

Events and interactions are read newest first, at most :data:`SCAN_LIMIT` of each kind per
period; when a period holds more, the page says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.storage.tables import events, grants, interactions, sessions, users

SCAN_LIMIT = 50_000
PERIODS = {"24h": 24 * 3600, "7d": 7 * 24 * 3600, "30d": 30 * 24 * 3600}
AGE_BUCKETS: tuple[tuple[str, int], ...] = (
    ("< 1 min", 60),
    ("1-5 min", 300),
    ("5-15 min", 900),
    ("15-60 min", 3600),
    ("1-24 h", 86400),
    ("1-7 d", 7 * 86400),
    ("> 7 d", 2**62),
)


def age_bucket(seconds: int) -> str:
    for label, upper in AGE_BUCKETS:
        if seconds < upper:
            return label
    return AGE_BUCKETS[-1][0]


def histogram(ages: list[int]) -> list[tuple[str, int]]:
    counts = Counter(age_bucket(a) for a in ages)
    return [(label, counts.get(label, 0)) for label, _ in AGE_BUCKETS]


@dataclass
class ActionStats:
    action: str
    grants: int = 0
    step_ups: int = 0
    failed: int = 0
    abandoned: int = 0
    ages: list[int] = field(default_factory=list)

    @property
    def allowed_fresh(self) -> int:
        return max(0, self.grants - self.step_ups)


@dataclass(frozen=True)
class Reauth:
    at: int
    user: str
    method: str
    action: str | None
    outcome: str
    detail: str


@dataclass(frozen=True)
class LiveSession:
    id: str
    user: str
    proof_age: int
    last_seen_age: int
    user_agent: str | None


@dataclass
class Overview:
    since: int
    now: int
    by_method: dict[str, Counter[str]]
    """method -> {"succeeded": n, "failed": n}"""
    recent: list[Reauth]
    actions: list[ActionStats]
    sessions: list[LiveSession]
    session_ages: list[tuple[str, int]]
    truncated: bool


def _events(conn: Connection, types: list[str], since: int) -> list[Any]:
    return list(
        conn.execute(
            sa.select(events.c.occurred_at, events.c.type, events.c.user_id, events.c.data)
            .where(events.c.type.in_(types), events.c.occurred_at >= since)
            .order_by(events.c.id.desc())
            .limit(SCAN_LIMIT)
        ).all()
    )


def _interaction_action(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    if isinstance(params.get("action"), str):
        return str(params["action"])
    request = params.get("request")
    if isinstance(request, dict) and isinstance(request.get("action"), str):
        return str(request["action"])
    return None


def overview(conn: Connection, now: int, period: int, idle_ttl: int) -> Overview:
    since = now - period
    rows = _events(conn, ["authentication.reauthenticated", "authentication.failed"], since)
    truncated = len(rows) >= SCAN_LIMIT
    emails = dict(
        conn.execute(
            sa.select(users.c.id, users.c.email).where(
                users.c.id.in_({r.user_id for r in rows if r.user_id} or {""})
            )
        ).all()
    )
    by_method: dict[str, Counter[str]] = {}
    per_action: dict[str, ActionStats] = {}
    recent: list[Reauth] = []
    for r in rows:
        data = r.data if isinstance(r.data, dict) else {}
        failed = r.type == "authentication.failed"
        if failed and not data.get("reauthentication"):
            continue  # a failed first sign-in is not a step-up
        method = str(data.get("method") or "unknown")
        outcome = "failed" if failed else "succeeded"
        by_method.setdefault(method, Counter())[outcome] += 1
        action = data.get("action") if isinstance(data.get("action"), str) else None
        if action:
            stats = per_action.setdefault(action, ActionStats(action))
            if failed:
                stats.failed += 1
            else:
                stats.step_ups += 1
        if len(recent) < 25:
            if failed:
                detail = str(data.get("reason") or "")
            else:
                previous = data.get("previous_auth_time")
                detail = (
                    f"previous proof {age_bucket(int(r.occurred_at) - int(previous))} old"
                    if isinstance(previous, int)
                    else ""
                )
            recent.append(
                Reauth(
                    int(r.occurred_at),
                    emails.get(r.user_id, r.user_id or "unknown user"),
                    method,
                    action,
                    outcome,
                    detail,
                )
            )

    bound = conn.execute(
        sa.select(grants.c.action, grants.c.created_at, grants.c.auth_time)
        .where(grants.c.action.is_not(None), grants.c.created_at >= since)
        .order_by(grants.c.created_at.desc())
        .limit(SCAN_LIMIT)
    ).all()
    truncated = truncated or len(bound) >= SCAN_LIMIT
    for g in bound:
        stats = per_action.setdefault(g.action, ActionStats(g.action))
        stats.grants += 1
        stats.ages.append(max(0, int(g.created_at) - int(g.auth_time)))

    expired = conn.execute(
        sa.select(interactions.c.params)
        .where(
            interactions.c.created_at >= since,
            interactions.c.completed_at.is_(None),
            interactions.c.expires_at < now,
        )
        .order_by(interactions.c.created_at.desc())
        .limit(SCAN_LIMIT)
    ).all()
    truncated = truncated or len(expired) >= SCAN_LIMIT
    for i in expired:
        action = _interaction_action(i.params)
        if action:
            per_action.setdefault(action, ActionStats(action)).abandoned += 1

    live = conn.execute(
        sa.select(
            sessions.c.id,
            sessions.c.user_id,
            sessions.c.auth_time,
            sessions.c.last_seen_at,
            sessions.c.user_agent,
            users.c.email,
        )
        .join(users, users.c.id == sessions.c.user_id)
        .where(
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
            sessions.c.last_seen_at > now - idle_ttl,
        )
        .order_by(sessions.c.auth_time)
        .limit(SCAN_LIMIT)
    ).all()
    live_sessions = [
        LiveSession(s.id, s.email, now - int(s.auth_time), now - int(s.last_seen_at), s.user_agent)
        for s in live
    ]
    return Overview(
        since,
        now,
        dict(sorted(by_method.items())),
        recent,
        sorted(per_action.values(), key=lambda a: a.action),
        live_sessions,
        histogram([s.proof_age for s in live_sessions]),
        truncated,
    )
