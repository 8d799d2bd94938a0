"""The outbox: events are inserted on the caller's connection, inside the caller's transaction.

Because the event row commits or rolls back with the change it describes, a reader of the events
table never sees an event for a change that did not happen, nor misses one that did. Each row is
appended to the audit chain as it is written (:mod:`freshid.events.chain`), which also makes event
ids follow commit order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from freshid.events import chain
from freshid.events.catalog import EventType


def record(
    conn: Connection,
    type_: EventType,
    now: int,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    client_id: str | None = None,
    **data: Any,
) -> int:
    """Write one event in the caller's transaction; returns its id."""
    return chain.append(conn, type_.value, now, user_id, session_id, client_id, data)
