"""Revision 0006 chains the events a database already holds, and the chain goes on from there."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from freshid.events import audit, outbox
from freshid.events.catalog import EventType
from freshid.storage import migrate
from freshid.storage.database import Database


def test_existing_events_are_chained_on_upgrade(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/old.sqlite3")
    cfg = migrate._config()
    with db.write() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    with db.write() as conn:
        for i, kind in enumerate(["user.created", "session.created", "session.revoked"]):
            conn.execute(
                sa.text(
                    "INSERT INTO events (type, occurred_at, user_id, data)"
                    " VALUES (:t, :o, 'u1', :d)"
                ),
                {"t": kind, "o": 1_700_000_000 + i, "d": '{"reason": "test", "n": 1}'},
            )
        # A rolled-back write under the old scheme left a gap in the ids.
        conn.execute(sa.text("DELETE FROM events WHERE id = 2"))
    migrate.upgrade(db)
    report = audit.verify(db.read)
    assert report.ok and report.events == 2 and report.last_id == 3
    with db.write() as conn:
        new_id = outbox.record(conn, EventType.USER_DISABLED, 1_700_000_100, user_id="u1")
    assert new_id == 4
    report = audit.verify(db.read)
    assert report.ok and report.events == 3
    db.dispose()
