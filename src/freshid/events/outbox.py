"""The outbox: events are inserted on the caller's connection, inside the caller's transaction.

Because the event row commits or rolls back with the change it describes, a reader of the events
table never sees an event for a change that did not happen, nor misses one that did.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from freshid.events.catalog import EventType
from freshid.storage.tables import events


def record(
    conn: Connection,
    type_: EventType,
    now: int,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    client_id: str | None = None,
    **data: Any,
) -> None:
    conn.execute(
        events.insert().values(
            type=type_.value,
            occurred_at=now,
            user_id=user_id,
            session_id=session_id,
            client_id=client_id,
            data=data,
        )
    )
