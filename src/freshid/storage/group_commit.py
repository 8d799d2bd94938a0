"""Group commit for short SQLite writes made on the event loop.

A refresh grant commits a handful of pages (the new refresh token and its index entries, the
retired one, the access-token id, the event and its indexes, the chain head) and a SQLite commit
writes each of them to the WAL; requests in flight at the same moment write mostly the same
pages (the newest leaf of every append-only table, the chain head). So the short units of work
that reach the event loop in one turn of it share one transaction: each runs inside its own
``SAVEPOINT`` (https://sqlite.org/lang_savepoint.html), so a unit that fails leaves no trace and
the others are unaffected, and one ``COMMIT`` at the start of the loop's next turn makes them all
durable together. No unit's caller hears of success before that commit; if it fails, every unit
in the group sees the error, as each would have seen its own failed commit.

Units in a group see each other's writes as they run, in order: the second of two redemptions of
one code finds it used, as it would after the first one's commit. Readers on other connections
see the group all at once, at its commit. While a group is open the store's write lock is held,
so writers on worker threads wait for its commit, as they wait for any other write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.storage.database import Database

T = TypeVar("T")


class _Group:
    def __init__(self, conn: Connection, transaction: sa.RootTransaction) -> None:
        self.conn = conn
        self.transaction = transaction
        self.driver = conn.connection.driver_connection
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.broken = False
        """A savepoint could not be rolled back: the whole group must roll back."""


class GroupCommit:
    """Runs short write units on the event loop, several to a transaction (see module doc)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._open: _Group | None = None
        self.groups = 0
        """Transactions committed or rolled back so far."""
        self.units = 0
        """Units that ran in them."""

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the open group (opening one if need be) and return its result once the
        group is committed. Raises :class:`~freshid.storage.database.Busy`, having run nothing,
        when no group is open and the store cannot be locked without waiting."""
        group = self._open
        if group is None:
            conn, transaction = self.db.try_begin()
            group = self._open = _Group(conn, transaction)
            asyncio.get_running_loop().call_soon(self._commit, group)
        result = self._unit(group, fn)
        # Shielded: a caller that gives up must not cancel the commit the others wait for.
        await asyncio.shield(group.committed)
        return result

    def _unit(self, group: _Group, fn: Callable[[Connection], T]) -> T:
        driver = group.driver
        assert driver is not None
        driver.execute("SAVEPOINT unit")
        self.units += 1
        try:
            result = fn(group.conn)
        except BaseException:
            try:
                driver.execute("ROLLBACK TO unit")
                driver.execute("RELEASE unit")
            except Exception:
                group.broken = True
            raise
        driver.execute("RELEASE unit")
        return result

    def _commit(self, group: _Group) -> None:
        self._open = None
        self.groups += 1
        try:
            if group.broken:
                group.transaction.rollback()
                raise sa.exc.InvalidRequestError("a failed unit left the group's transaction")
            group.transaction.commit()
        except Exception as exc:
            try:
                group.transaction.rollback()  # also after a failed COMMIT: SQLAlchemy needs it
            except Exception:
                self.db.close_kept_connection()  # broken: the next group connects afresh
            group.committed.set_exception(exc)
        else:
            group.committed.set_result(None)
        finally:
            self.db.end()
