"""Sessions and their authentication history, with the events each change writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.methods.base import CompletedMethod
from freshid.sessions.model import AuthenticationEvent, Session, combine
from freshid.storage import grants as grant_store
from freshid.storage.prepared import Prepared, json_value
from freshid.storage.tables import session_authentications, sessions
from freshid.tokens.secrets import digest, new_token


@dataclass(frozen=True)
class RequestContext:
    """Who is asking, for the evidence an event carries."""

    ip: str | None = None
    user_agent: str | None = None
    client_id: str | None = None


_SA = session_authentications
# The methods of a session's latest authentication event, in one statement: these lookups run
# on every authorization request and hosted page (:mod:`freshid.storage.prepared`).
_LATEST_EVENT_ID = (
    sa.select(_SA.c.event_id)
    .where(_SA.c.session_id == sa.bindparam("session_id"))
    .order_by(_SA.c.completed_at.desc(), _SA.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
_LATEST_EVENT = Prepared(
    sa.select(_SA.c.event_id, _SA.c.method, _SA.c.amr, _SA.c.factors, _SA.c.phishing_resistant)
    .where(_SA.c.session_id == sa.bindparam("session_id"), _SA.c.event_id == _LATEST_EVENT_ID)
    .order_by(_SA.c.id)
)
_SESSION_COLUMNS = (
    sessions.c.id,
    sessions.c.user_id,
    sessions.c.created_at,
    sessions.c.auth_time,
    sessions.c.last_seen_at,
    sessions.c.expires_at,
    sessions.c.revoked_at,
)
_BY_COOKIE = Prepared(
    sa.select(*_SESSION_COLUMNS).where(sessions.c.cookie_digest == sa.bindparam("digest"))
)
_BY_ID = Prepared(sa.select(*_SESSION_COLUMNS).where(sessions.c.id == sa.bindparam("id")))
_TOUCH = Prepared(
    sessions.update()
    .where(sessions.c.id == sa.bindparam("id"))
    .values(last_seen_at=sa.bindparam("now"))
)


def _latest_event(conn: Connection, session_id: str) -> tuple[str | None, AuthenticationEvent]:
    rows = _LATEST_EVENT.all(conn, session_id=session_id)
    if not rows:
        return None, combine([])
    parts = [
        (
            r["method"],
            tuple(json_value(r["amr"])),
            frozenset(json_value(r["factors"]) or ()),
            bool(r["phishing_resistant"]),
        )
        for r in rows
    ]
    return rows[0]["event_id"], combine(parts)


def _session(conn: Connection, m: Mapping[Any, Any] | None) -> Session | None:
    if m is None:
        return None
    event_id, event = _latest_event(conn, m["id"])
    return Session(
        m["id"],
        m["user_id"],
        m["created_at"],
        m["auth_time"],
        m["last_seen_at"],
        m["expires_at"],
        event.acr,
        event.amr,
        m["revoked_at"],
        event_id,
        event.methods,
        event.factors,
        event.phishing_resistant,
    )


def by_cookie(conn: Connection, cookie_secret: str) -> Session | None:
    return _session(conn, _BY_COOKIE.first(conn, digest=digest(cookie_secret)))


def by_id(conn: Connection, session_id: str) -> Session | None:
    return _session(conn, _BY_ID.first(conn, id=session_id))


def _append(
    conn: Connection, session_id: str, completed: CompletedMethod, action: str | None, event_id: str
) -> None:
    conn.execute(
        session_authentications.insert().values(
            session_id=session_id,
            method=completed.method,
            amr=list(completed.amr),
            acr=completed.acr,
            completed_at=completed.completed_at,
            action=action,
            upstream=completed.upstream,
            event_id=event_id,
            factors=sorted(completed.factors),
            phishing_resistant=completed.phishing_resistant,
        )
    )


def _evidence(completed: CompletedMethod, session: Session, ctx: RequestContext) -> dict[str, Any]:
    """What an authentication event records: the method just completed, and what the event it
    belongs to now proves as a whole."""
    return {
        "method": completed.method,
        "amr": list(session.amr),
        "acr": session.acr,
        "methods": list(session.methods),
        "upstream": completed.upstream,
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
    }


def start(
    conn: Connection,
    user_id: str,
    completed: CompletedMethod,
    now: int,
    ttl: int,
    ctx: RequestContext,
) -> tuple[Session, str]:
    """A new session for a first sign-in; returns it with its cookie secret."""
    sid, secret = new_token(16), new_token(32)
    conn.execute(
        sessions.insert().values(
            id=sid,
            user_id=user_id,
            cookie_digest=digest(secret),
            created_at=now,
            auth_time=completed.completed_at,
            last_seen_at=now,
            expires_at=now + ttl,
            user_agent=ctx.user_agent,
        )
    )
    _append(conn, sid, completed, None, new_token(16))
    session = by_id(conn, sid)
    assert session is not None
    outbox.record(
        conn,
        EventType.SESSION_CREATED,
        now,
        user_id=user_id,
        session_id=sid,
        client_id=ctx.client_id,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
    )
    outbox.record(
        conn,
        EventType.AUTHENTICATION_SUCCEEDED,
        now,
        user_id=user_id,
        session_id=sid,
        client_id=ctx.client_id,
        auth_time=completed.completed_at,
        **_evidence(completed, session, ctx),
    )
    return session, secret


def reauthenticate(
    conn: Connection,
    session: Session,
    completed: CompletedMethod,
    now: int,
    ctx: RequestContext,
    *,
    action: str | None = None,
    event_id: str | None = None,
    signing_in: bool = False,
) -> tuple[Session, str]:
    """Same subject, same sid: move auth_time forward and rotate the cookie secret.

    ``event_id`` continues an authentication event begun earlier in the same interaction (a
    second factor); ``signing_in`` says that event was a first sign-in, not a re-proof.
    """
    secret = new_token(32)
    conn.execute(
        sessions.update()
        .where(sessions.c.id == session.id)
        .values(cookie_digest=digest(secret), auth_time=completed.completed_at, last_seen_at=now)
    )
    _append(conn, session.id, completed, action, event_id or new_token(16))
    updated = by_id(conn, session.id)
    assert updated is not None
    kind = (
        EventType.AUTHENTICATION_SUCCEEDED
        if signing_in
        else EventType.AUTHENTICATION_REAUTHENTICATED
    )
    outbox.record(
        conn,
        kind,
        now,
        user_id=session.user_id,
        session_id=session.id,
        client_id=ctx.client_id,
        auth_time=completed.completed_at,
        previous_auth_time=session.auth_time,
        action=action,
        **_evidence(completed, updated, ctx),
    )
    return updated, secret


def revoke(
    conn: Connection, session_id: str, reason: str, now: int, user_id: str | None = None
) -> bool:
    result = conn.execute(
        sessions.update()
        .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    if result.rowcount:
        grant_store.revoke_for_session(conn, session_id, f"session_{reason}", now)
        outbox.record(
            conn,
            EventType.SESSION_REVOKED,
            now,
            user_id=user_id,
            session_id=session_id,
            reason=reason,
        )
    return bool(result.rowcount)


def touch(conn: Connection, session_id: str, now: int) -> None:
    _TOUCH.execute(conn, id=session_id, now=now)


def is_alive(conn: Connection, session_id: str, now: int, idle_ttl: int) -> bool:
    row = conn.execute(
        sa.select(sessions.c.revoked_at, sessions.c.expires_at, sessions.c.last_seen_at).where(
            sessions.c.id == session_id
        )
    ).first()
    return (
        row is not None
        and row.revoked_at is None
        and now < row.expires_at
        and now - row.last_seen_at < idle_ttl
    )


@dataclass(frozen=True)
class SessionSummary:
    session: Session
    user_agent: str | None


def live_for_user(conn: Connection, user_id: str, now: int, idle_ttl: int) -> list[SessionSummary]:
    """The user's sessions that still work, newest first (for the account page)."""
    rows = conn.execute(
        sessions.select()
        .where(
            sessions.c.user_id == user_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
            sessions.c.last_seen_at > now - idle_ttl,
        )
        .order_by(sessions.c.created_at.desc())
        .limit(50)
    ).all()
    out = []
    for row in rows:
        session = _session(conn, row._mapping)
        if session is not None:
            out.append(SessionSummary(session, row._mapping["user_agent"]))
    return out
