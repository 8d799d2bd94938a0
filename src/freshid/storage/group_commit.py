"""Group commit for short writes: one transaction, and one commit, for the short units of work
that reach the event loop in the same turn of it.

A refresh grant commits a handful of pages (the new refresh token and its index entries, the
retired one, the access-token id, the event and its indexes, the chain head) and a SQLite commit
writes each of them to the WAL; requests in flight at the same moment write mostly the same
pages (the newest leaf of every append-only table, the chain head). So the short units of work
that reach the event loop in one turn of it share one transaction: each runs inside its own
``SAVEPOINT`` (https://sqlite.org/lang_savepoint.html), so a unit that fails leaves no trace and
the others are unaffected, and one ``COMMIT`` at the start of the loop's next turn makes them all
durable together. No unit's caller hears of success before that commit; if it fails, every unit
in the group sees the error, as each would have seen its own failed commit. The units' audit
events are held back and written together right before the commit
(:func:`freshid.events.chain.hold`): one read of the chain head and one move of it per group, not
per unit; a unit that fails takes its events with it.

Units in a group see each other's writes as they run, in order: the second of two redemptions of
one code finds it used, as it would after the first one's commit. Readers on other connections
see the group all at once, at its commit. While a group is open the store's write lock is held,
so writers on worker threads wait for its commit, as they wait for any other write.

On PostgreSQL (:class:`ThreadedGroupCommit`) the units cannot run on the loop (each statement is
a network round trip), and what a shared commit saves is the audit chain's: event writers take
turns on the chain head from their first event until their commit (:mod:`freshid.events.chain`),
so every commit's WAL flush was waited out by the next writer, and event-writing transactions
were capped near 400/s on the benchmark machine. Units go to worker threads in groups, each
group one transaction and one WAL flush, its events appended together at its end
(:func:`freshid.events.chain.deferred`), so the head is held for its last few statements and
the commit. At most :data:`PARALLEL_GROUPS` groups run at once, and units arriving meanwhile wait
and leave together as the next group, so groups grow with the load
(measured with two groups at a time: ~6 units a group with 16 refreshes in flight). No
savepoints there (each would be two more round trips per unit): units report
protocol errors as values, so a unit that *raises* is rare, and then the group is rolled back
before its commit and every unit runs again alone, in its own transaction, as it would have
without grouping. A failed ``COMMIT`` is not retried (it may have committed): every unit of the
group gets its error. The exception is a transaction PostgreSQL rolled back itself, a deadlock
victim or a serialization failure (SQLSTATE 40P01, 40001): nothing of it is durable, so its units
run again, alone, up to :data:`ROLLBACK_ATTEMPTS` times each, instead of answering ``503``. Only
these units are retried: they are a few statements and no other I/O (``Provider.write_short``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.events import chain
from freshid.storage.database import Busy, Database, driver_error

T = TypeVar("T")


class _Group:
    def __init__(self, conn: Connection, transaction: sa.RootTransaction) -> None:
        self.conn = conn
        self.transaction = transaction
        self.driver = conn.connection.driver_connection
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.broken = False
        """A savepoint could not be rolled back: the whole group must roll back."""
        self.events = chain.hold(conn)
        """The units' events, written together right before the commit."""


LOCKED_WAIT = 1.0
"""Seconds a unit waits on the loop for another writer to let go of the store (a worker
thread's transaction, a checkpoint, another process) before it goes to a worker thread, where
SQLite's busy handler waits out longer locks (a migration, a backup)."""
_FIRST_PAUSE = 0.0005
_LAST_PAUSE = 0.005


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
        when no group is open and the store stays locked for :data:`LOCKED_WAIT` seconds."""
        group = self._open or await self._begin()
        result = self._unit(group, fn)
        # Shielded: a caller that gives up must not cancel the commit the others wait for.
        await asyncio.shield(group.committed)
        return result

    async def _begin(self) -> _Group:
        """The open group, or a new one once the store can be locked. While another writer
        holds the lock, the unit waits here, on the loop, and not in a worker thread with a
        transaction of its own: units sent to threads took the lock from one another, one unit
        per commit, so the next units found it taken too, and the server stayed at half its
        rate after a moment's lock (the WAL checkpointer's, :mod:`freshid.storage.checkpoints`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCKED_WAIT
        pause = _FIRST_PAUSE
        while self._open is None:
            try:
                conn, transaction = self.db.try_begin()
            except Busy:
                if loop.time() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LAST_PAUSE)
                continue
            self._open = _Group(conn, transaction)
            loop.call_soon(self._commit, self._open)
        return self._open

    def _unit(self, group: _Group, fn: Callable[[Connection], T]) -> T:
        driver = group.driver
        assert driver is not None
        driver.execute("SAVEPOINT unit")
        self.units += 1
        held = len(group.events)
        try:
            result = fn(group.conn)
        except BaseException:
            del group.events[held:]  # they go with the rest of the unit
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
                raise sa.exc.InvalidRequestError("a failed unit left the group's transaction")
            chain.flush(group.conn)
            group.transaction.commit()
        except Exception as exc:
            chain.drop(group.conn)
            try:
                group.transaction.rollback()  # also after a failed COMMIT: SQLAlchemy needs it
            except Exception:
                self.db.close_kept_connection()  # broken: the next group connects afresh
            group.committed.set_exception(exc)
        else:
            group.committed.set_result(None)
        finally:
            self.db.end()


PARALLEL_GROUPS = 4
"""Groups in flight at once on PostgreSQL. Measured with the refresh benchmark: 1 or 2 gave the
largest groups and the most refreshes/s with 16 in flight but fewer than no grouping with 4
(transactions that could have overlapped waited instead); 4 matched no grouping with 4 in flight
and gave +45 % with 16."""
MAX_GROUP = 32
"""Units in one PostgreSQL transaction at most (its locks are held until its commit)."""


@dataclass
class _Unit:
    fn: Callable[[Connection], Any]
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


ROLLBACK_ATTEMPTS = 3
"""Runs of a unit that PostgreSQL keeps rolling back (deadlock victim, serialization failure)
before its caller gets the error: a temporary condition the next attempt usually escapes."""


_ROLLED_BACK = frozenset({"40001", "40P01"})
"""SQLSTATEs of a transaction PostgreSQL rolled back itself: serialization_failure,
deadlock_detected (https://www.postgresql.org/docs/current/errcodes-appendix.html)."""


def rolled_back(exc: BaseException) -> bool:
    """Whether PostgreSQL rolled the transaction back itself, a deadlock victim or a
    serialization failure (https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html):
    nothing of it is durable and running it again is safe."""
    cause = driver_error(exc)
    return isinstance(cause, psycopg.Error) and cause.sqlstate in _ROLLED_BACK


class _UnitRaised(Exception):
    """A unit of a PostgreSQL group raised before the group's commit."""


_Outcome = tuple[bool, Any]
"""``(True, result)`` or ``(False, exception)``."""


class ThreadedGroupCommit:
    """Runs short write units several to a transaction in worker threads (see module doc)."""

    def __init__(
        self, db: Database, limiter: anyio.CapacityLimiter, parallel: int = PARALLEL_GROUPS
    ) -> None:
        self.db = db
        self.limiter = limiter
        self.parallel = parallel
        self._pending: list[_Unit] = []
        self._scheduled = False
        self._active = 0
        self._running: set[asyncio.Task[None]] = set()
        self.groups = 0
        """Transactions that ran more than one unit and committed."""
        self.units = 0
        """Units that ran in them."""
        self.fallbacks = 0
        """Groups rolled back (a unit raised, or PostgreSQL rolled the group back itself), their
        units then run alone."""

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` with the other units waiting at the time; its result after the commit, or
        its exception."""
        unit = _Unit(fn)
        self._pending.append(unit)
        if not self._scheduled:
            # At the end of this turn of the loop, so that its other units join.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)
        # Shielded: a caller that gives up must not cancel the group's transaction.
        result: T = await asyncio.shield(unit.done)
        return result

    def _start(self) -> None:
        """Start groups while fewer than ``parallel`` run; the rest wait for one to end, and
        that wait is what makes groups large when the store is busy."""
        self._scheduled = False
        while self._pending and self._active < self.parallel:
            units = self._pending[:MAX_GROUP]
            del self._pending[:MAX_GROUP]
            self._active += 1
            task = asyncio.ensure_future(self._execute(units))
            self._running.add(task)  # a reference until it ends, or it could be collected
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._active -= 1
        self._start()

    async def _execute(self, units: list[_Unit]) -> None:
        try:
            outcomes = await anyio.to_thread.run_sync(
                self._run_units, units, limiter=self.limiter, abandon_on_cancel=False
            )
        except asyncio.CancelledError:  # the server is shutting down
            for unit in units:
                unit.done.cancel()
            raise
        for unit, (ok, value) in zip(units, outcomes, strict=True):
            if unit.done.cancelled():
                continue
            if ok:
                unit.done.set_result(value)
            else:
                unit.done.set_exception(value)

    def _run_units(self, units: list[_Unit]) -> list[_Outcome]:
        """In a worker thread: all units in one transaction, or each alone if one raises."""
        if len(units) == 1:
            return [self._alone(units[0])]
        try:
            with self.db.write() as conn:
                try:
                    # The units' events go to the audit chain together at the end: the chain
                    # head is locked for the last two statements, not from the first unit on.
                    with chain.deferred(conn):
                        results = [unit.fn(conn) for unit in units]
                except Exception as exc:
                    raise _UnitRaised from exc  # rolled back by db.write, then each alone
        except Exception as exc:
            # A unit raised (db.write rolled the group back), or PostgreSQL rolled it back
            # itself at COMMIT: nothing of it is durable, so each unit runs again alone. Any
            # other failure of the COMMIT (or BEGIN) may have committed: no retry.
            if not isinstance(exc, _UnitRaised) and not rolled_back(exc):
                return [(False, exc)] * len(units)
            self.fallbacks += 1
            return [self._alone(unit) for unit in units]
        self.groups += 1
        self.units += len(units)
        return [(True, result) for result in results]

    def _alone(self, unit: _Unit) -> _Outcome:
        attempt = 1
        while True:
            try:
                # Its events deferred too: the chain head is then held for the last statements.
                with self.db.write() as conn, chain.deferred(conn):
                    return True, unit.fn(conn)
            except Exception as exc:
                if attempt == ROLLBACK_ATTEMPTS or not rolled_back(exc):
                    return False, exc
            # The other transaction of the deadlock is still finishing: let it.
            time.sleep(random.uniform(0.005, 0.02) * attempt)
            attempt += 1
