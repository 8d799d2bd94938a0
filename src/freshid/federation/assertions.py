"""SAML assertion IDs already accepted, per connection (SAML 2.0 Profiles §4.1.4.5: the service
provider must not accept a bearer assertion twice).

One conditional INSERT decides: ``ON CONFLICT DO NOTHING ... RETURNING`` on both backends, so of
two parallel posts of the same assertion exactly one wins. An ID is kept until its assertion's
``NotOnOrAfter``; after that the validity check refuses the assertion anyway.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from freshid.storage.tables_federation import saml_assertions_seen as table


def remember(
    conn: Connection, connection_id: str, assertion_id: str, expires_at: int, now: int
) -> bool:
    """True the first time ``assertion_id`` is seen for this connection, False on a replay."""
    values = {
        "connection_id": connection_id,
        "assertion_id": assertion_id[:256],
        "expires_at": expires_at,
    }
    purge_expired(conn, now)  # expired IDs go as new ones arrive: no background job needed
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING says whether this statement inserted the row (rowcount is not reliable for an
    # INSERT ... ON CONFLICT through every driver).
    return conn.execute(statement.returning(table.c.assertion_id)).first() is not None


def purge_expired(conn: Connection, now: int) -> int:
    return conn.execute(table.delete().where(table.c.expires_at < now)).rowcount
