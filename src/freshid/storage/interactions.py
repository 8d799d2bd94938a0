"""Interactions: authorization requests waiting for the user, stored so any node can finish them.

An interaction is bound to the browser that started it (a digest of the browser cookie), so a
leaked interaction URL is useless in another browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from freshid.storage.tables import interactions
from freshid.tokens.secrets import digest, new_token


@dataclass(frozen=True)
class Interaction:
    id: str
    client_id: str | None
    params: dict[str, Any]
    created_at: int
    expires_at: int
    completed_at: int | None


def create(
    conn: Connection,
    browser_id: str,
    client_id: str | None,
    params: dict[str, Any],
    now: int,
    ttl: int,
) -> str:
    iid = new_token(24)
    conn.execute(
        interactions.insert().values(
            id=iid,
            browser_digest=digest(browser_id),
            client_id=client_id,
            params=params,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return iid


def load(conn: Connection, iid: str, browser_id: str, now: int) -> Interaction | None:
    """The interaction if it exists, belongs to this browser and is neither expired nor done."""
    row = conn.execute(
        interactions.select().where(
            interactions.c.id == iid,
            interactions.c.browser_digest == digest(browser_id),
            interactions.c.expires_at > now,
            interactions.c.completed_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    m = row._mapping
    return Interaction(
        m["id"],
        m["client_id"],
        dict(m["params"]),
        m["created_at"],
        m["expires_at"],
        m["completed_at"],
    )


def update_params(conn: Connection, iid: str, params: dict[str, Any]) -> None:
    conn.execute(interactions.update().where(interactions.c.id == iid).values(params=params))


def complete(conn: Connection, iid: str, now: int) -> bool:
    result = conn.execute(
        interactions.update()
        .where(interactions.c.id == iid, interactions.c.completed_at.is_(None))
        .values(completed_at=now)
    )
    return result.rowcount == 1
