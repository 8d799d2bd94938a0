"""The token endpoint's fast paths: driver-level statements stay inside the caller's transaction,
and a SQLite write on the event loop never waits for another writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from freshid.clock import FrozenClock
from freshid.provider import Provider
from freshid.settings import load_settings
from freshid.storage import migrate, prepared
from freshid.storage.database import Busy, Database
from freshid.storage.prepared import Prepared
from freshid.storage.tables import login_failures

_INSERT = prepared.insert(login_failures, ("bucket", "window_start", "failures"))
_BUMP = Prepared(
    login_failures.update()
    .where(login_failures.c.bucket == sa.bindparam("bucket"))
    .values(failures=login_failures.c.failures + 1)
)
_FIND = Prepared(
    sa.select(login_failures.c.failures, login_failures.c.window_start).where(
        login_failures.c.bucket == sa.bindparam("bucket")
    )
)


def _failures(db: Database, bucket: str) -> int | None:
    with db.read() as conn:
        row = _FIND.first(conn, bucket=bucket)
    return None if row is None else int(row["failures"])


def test_prepared_statements_commit_and_roll_back_with_the_callers_transaction(
    db: Database,
) -> None:
    with db.write() as conn:
        assert _INSERT.execute(conn, bucket="kept", window_start=10, failures=1) == 1
        assert _BUMP.execute(conn, bucket="kept") == 1
        # Core statements on the same connection see the driver-level writes.
        assert conn.execute(sa.select(login_failures.c.failures)).scalar_one() == 2
    assert _failures(db, "kept") == 2

    with pytest.raises(RuntimeError), db.write() as conn:
        _INSERT.execute(conn, bucket="lost", window_start=10, failures=1)
        _BUMP.execute(conn, bucket="kept")
        raise RuntimeError("the unit of work fails after its statements ran")
    assert _failures(db, "lost") is None
    assert _failures(db, "kept") == 2
    with db.read() as conn:
        assert _BUMP.execute(conn, bucket="nobody") == 0
        assert _FIND.all(conn, bucket="kept") == [{"failures": 2, "window_start": 10}]


def test_json_columns_read_back_the_same_on_both_stores(db: Database) -> None:
    assert prepared.json_value(prepared.json_param(["pwd", "otp"])) == ["pwd", "otp"]
    assert prepared.json_value(["pwd"]) == ["pwd"]  # PostgreSQL hands back decoded JSON


def _hold_write_lock(path: Path, locked: threading.Event, release: threading.Event) -> None:
    """Another process's writer, as SQLite sees it: its own connection in BEGIN IMMEDIATE."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    locked.set()
    release.wait(10)
    other.execute("ROLLBACK")
    other.close()


def test_a_sqlite_write_on_the_event_loop_falls_back_to_a_thread_when_another_writer_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write first waits on the loop, without blocking it, for the group commit's
    ``LOCKED_WAIT``; a lock held longer is waited out in a worker thread."""
    monkeypatch.setattr("freshid.storage.group_commit.LOCKED_WAIT", 0.05)
    path = tmp_path / "freshid.sqlite3"
    settings = load_settings(environ={}, database_url=f"sqlite:///{path}")
    provider = Provider(settings, FrozenClock(1_700_000_000))
    migrate.upgrade(provider.db)
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, locked, release))
    holder.start()
    assert locked.wait(10)
    try:
        with pytest.raises(Busy):
            provider.db.try_begin()  # must not start while another writer holds the store
        kept = provider.db._kept_conn
        assert kept is not None and not kept.closed  # a busy store does not cost the connection

        async def write_while_locked() -> tuple[int, str]:
            loop_thread = threading.get_ident()

            def work(conn: sa.Connection) -> tuple[int, str]:
                _INSERT.execute(conn, bucket="b", window_start=1, failures=1)
                return threading.get_ident(), "done"

            task = asyncio.ensure_future(provider.write_short(work))
            # The event loop stays free while the write waits, on it and then in a thread.
            await asyncio.sleep(0.2)
            assert not task.done()
            release.set()
            thread, result = await task
            assert thread != loop_thread
            return thread, result

        asyncio.run(write_while_locked())
    finally:
        release.set()
        holder.join()
    assert _failures(provider.db, "b") == 1

    async def write_when_free() -> int:
        return await provider.write_short(lambda conn: threading.get_ident())

    assert asyncio.run(write_when_free()) == threading.get_ident()  # ran on the loop itself
    assert provider.db._kept_conn is kept
    provider.db.dispose()
