"""Federation flows in flight: what FreshID must remember between sending the browser upstream and
its return (OIDC ``state``, ``nonce`` and PKCE verifier; SAML ``ID`` for ``InResponseTo``).

Stored server-side, looked up by a digest of the ``state``/``RelayState``, bound to the browser
that started the flow (so a response delivered to another browser — login CSRF, RFC 6749 §10.12 —
finds nothing) and consumed once by a conditional UPDATE, so a replayed callback has no second
success on either backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.engine import Connection

from freshid.storage.tables_federation import federation_flows as table
from freshid.tokens.secrets import digest

FLOW_TTL = 600
"""Seconds a user may spend at the upstream before the flow expires."""
SIGNIN = "signin"
REAUTH = "reauth"
LINK = "link"


@dataclass(frozen=True)
class Flow:
    connection_id: str
    interaction_id: str | None
    purpose: str
    user_id: str | None
    force: bool
    nonce: str | None
    code_verifier: str | None
    request_id: str | None
    result: dict[str, Any] | None
    created_at: int


def begin(
    conn: Connection,
    *,
    state: str,
    connection_id: str,
    browser: str,
    interaction_id: str | None,
    purpose: str,
    user_id: str | None,
    force: bool,
    now: int,
    nonce: str | None = None,
    code_verifier: str | None = None,
    request_id: str | None = None,
) -> None:
    # Flows long expired go as new ones begin: no background job needed.
    purge_expired(conn, now)
    conn.execute(
        table.insert().values(
            state_digest=digest(state),
            connection_id=connection_id,
            browser_digest=digest(browser),
            interaction_id=interaction_id,
            purpose=purpose,
            user_id=user_id,
            force=force,
            nonce=nonce,
            code_verifier=code_verifier,
            request_id=request_id,
            created_at=now,
            expires_at=now + FLOW_TTL,
        )
    )


def _flow(m: RowMapping) -> Flow:
    return Flow(
        m["connection_id"],
        m["interaction_id"],
        m["purpose"],
        m["user_id"],
        bool(m["force"]),
        m["nonce"],
        m["code_verifier"],
        m["request_id"],
        dict(m["result"]) if m["result"] is not None else None,
        int(m["created_at"]),
    )


def take(
    conn: Connection, state: str, connection_id: str, browser: str | None, now: int
) -> Flow | None:
    """The flow of this ``state`` for this connection and browser, consumed; None if it is
    unknown, another browser's, expired or already used."""
    if not state or len(state) > 512 or browser is None:
        return None
    key = digest(state)
    row = conn.execute(
        table.select().where(
            table.c.state_digest == key,
            table.c.connection_id == connection_id,
            table.c.browser_digest == digest(browser),
            table.c.expires_at > now,
        )
    ).first()
    if row is None:
        return None
    used = conn.execute(
        table.update()
        .where(table.c.state_digest == key, table.c.used_at.is_(None))
        .values(used_at=now)
    )
    return _flow(row._mapping) if used.rowcount == 1 else None


def pending(conn: Connection, state: str, connection_id: str, now: int) -> Flow | None:
    """An unexpired flow by ``state`` alone, answered or not (the SAML ACS is a cross-site POST
    without our cookies: the browser binding is checked on the browser's own GET; a second answer
    for the same flow is refused by :func:`store_result` and by the assertion replay cache)."""
    if not state or len(state) > 512:
        return None
    row = conn.execute(
        table.select().where(
            table.c.state_digest == digest(state),
            table.c.connection_id == connection_id,
            table.c.expires_at > now,
        )
    ).first()
    return _flow(row._mapping) if row else None


def store_result(conn: Connection, state: str, connection_id: str, result: dict[str, Any]) -> bool:
    """Attach a verified upstream answer to its pending flow, once."""
    done = conn.execute(
        table.update()
        .where(
            table.c.state_digest == digest(state),
            table.c.connection_id == connection_id,
            table.c.used_at.is_(None),
            table.c.result.is_(None),
        )
        .values(result=result)
    )
    return done.rowcount == 1


def purge_expired(conn: Connection, now: int) -> int:
    return conn.execute(table.delete().where(table.c.expires_at <= now - FLOW_TTL)).rowcount
