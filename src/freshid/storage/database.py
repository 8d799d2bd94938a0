"""The database handle: engine creation per backend and write transactions.

SQLite runs in WAL mode with a busy timeout, and write transactions start with ``BEGIN IMMEDIATE``
so two writers queue instead of failing on a lock upgrade. Within one process, SQLite writers also
queue on a lock of ours: SQLite's own busy handler sleeps with a growing back-off, which turned a
burst of writers into seconds of tail latency (measured in docs/benchmarks.md). PostgreSQL runs
at READ COMMITTED; exactly-once transitions (code redemption, refresh rotation) are single
conditional UPDATEs whose row count decides the winner, which is correct on both backends.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from freshid.storage.checkpoints import JOURNAL_SIZE_LIMIT, Checkpointer


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` / ``postgres://`` and pick the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> str:
    """The file of a SQLite URL; empty for an in-memory database."""
    path = url.split("///", 1)[1] if "///" in url else ""
    return "" if path == ":memory:" else path.split("?", 1)[0]


_BEGIN = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}
_BUSY_TIMEOUT_MS = 30_000


class Busy(Exception):
    """A transaction could not start, or a read go on, without waiting
    (:meth:`Database.try_begin`, :meth:`Database.read_nowait`)."""


_SQLITE_BUSY = frozenset({5, 6})
"""SQLITE_BUSY and SQLITE_LOCKED, the primary codes (https://sqlite.org/rescode.html)."""


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception: SQLAlchemy wraps it for its statements, while
    :mod:`freshid.storage.prepared` statements raise it directly."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def _would_wait(exc: BaseException) -> bool:
    cause = driver_error(exc)
    return isinstance(cause, sqlite3.Error) and cause.sqlite_errorcode & 0xFF in _SQLITE_BUSY


PAGE_CACHE_KIB = 1024
"""SQLite's page cache per connection (its default is 2,000 KiB). Every pooled connection fills
its own as the store grows, which on a busy server read as minutes of steady RSS growth (10
connections: up to 20 MiB; measured: +4.7 MiB/min through a 4-minute soak, against +1.6 MiB/min
with 1 MiB caches, both while the WAL index also grew: :mod:`freshid.storage.checkpoints`), and
the hot pages of the token tables fit in far less. Pages it does not hold come from the
operating system's cache."""


def _usable(conn: Connection | None) -> TypeGuard[Connection]:
    return conn is not None and not conn.closed and not conn.invalidated


def _discard(conn: Connection | None) -> None:
    """Close a :meth:`Database._nowait_connection` for good (invalidated, not pooled)."""
    if conn is not None and not conn.closed:
        conn.invalidate()
        conn.close()


class _SqliteOptions:
    background_checkpoints = False
    """Set before connections open: they then leave checkpoints to a :class:`Checkpointer`."""


def create_engine(url: str, options: _SqliteOptions | None = None) -> Engine:
    url = normalise_url(url)
    options = options or _SqliteOptions()
    if is_sqlite(url):
        path = sqlite_path(url)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            # More than Provider.db_limiter's 16 worker threads can hold, so that
            # Database.try_begin on the event loop never waits for a pooled connection.
            pool_size=8,
            max_overflow=24,
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let us issue BEGIN ourselves (pysqlite's implicit transactions defer locking).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            if options.background_checkpoints:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            # Straight to the driver: this runs for every transaction, and SQLAlchemy's own
            # execution path would cost more than the BEGIN itself.
            driver = conn.connection.driver_connection
            assert driver is not None
            if not options.get("sqlite_nowait"):  # else Database.try_begin has begun
                driver.execute(_BEGIN[options.get("sqlite_begin", "DEFERRED")])

        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self._sqlite_options = _SqliteOptions()
        self.engine = create_engine(self.url, self._sqlite_options)
        self.sqlite = is_sqlite(self.url)
        self._checkpointer: Checkpointer | None = None
        self._write_lock = threading.Lock() if self.sqlite else None
        self._kept_conn: Connection | None = None
        self._reader_lock = threading.Lock()
        self._kept_reader: Connection | None = None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction; commits on success, rolls back on any exception."""
        if self._write_lock is None:
            with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        with self._write_lock, self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def try_begin(self) -> tuple[Connection, sa.RootTransaction]:
        """Start a SQLite write transaction only if it can start without waiting; raises
        :class:`Busy` otherwise (another writer in this process or in another one). Lets short
        units of work run on the event loop (:mod:`freshid.storage.group_commit`). On success the
        write lock is held until :meth:`end`, after the caller commits or rolls back."""
        if self._write_lock is None or not self._write_lock.acquire(blocking=False):
            raise Busy
        try:
            # One connection kept for these transactions: checking one out of the pool and
            # back costs more than the transaction's own BEGIN and COMMIT. The write lock makes
            # its users take turns, whichever thread they run on.
            conn = self._kept_conn
            if not _usable(conn):
                conn = self._nowait_connection().execution_options(sqlite_nowait=True)
                self._kept_conn = conn
            self._begin_nowait(conn)
            return conn, conn.begin()
        except BaseException:
            self._write_lock.release()
            raise

    def _begin_nowait(self, conn: Connection) -> None:
        """``BEGIN IMMEDIATE`` on the driver of a :meth:`_nowait_connection`, failing at once
        instead of waiting: the caller is the event loop. Issued here rather than in
        SQLAlchemy's begin hook, which a failure would leave half-begun (the connection was then
        closed, and every retry while another writer held the store opened a new one)."""
        driver = conn.connection.driver_connection
        assert driver is not None
        try:
            driver.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _would_wait(exc):  # not a lock: a worker thread's attempt will say what
                self._kept_conn = None
                _discard(conn)
            raise Busy from None

    def _nowait_connection(self) -> Connection:
        """A connection of the event loop's own, with SQLite's busy handler off: a statement
        that would wait fails at once. Never back to the pool, where it would fail instead of
        waiting: :func:`_discard` it."""
        conn = self.engine.connect()
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA busy_timeout=0")
        return conn

    def end(self) -> None:
        """Release the write lock :meth:`try_begin` took."""
        assert self._write_lock is not None
        self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def read_nowait(self) -> Iterator[Connection]:
        """A SQLite read transaction that never waits, for the event loop's short reads; raises
        :class:`Busy` (from entering, or from a statement inside) when it would have to, and the
        caller then reads in a worker thread. In WAL mode readers do not wait for the writer
        (https://sqlite.org/wal.html#concurrency); SQLite's busy handler, off on this connection,
        would only matter in rare moments such as another connection resetting the WAL.

        One connection is kept for these reads, as :meth:`try_begin` keeps one for writes: the
        body runs without awaiting, so one read at a time is all the loop needs. Opening it may
        wait (its set-up pragmas), so it is opened by :meth:`keep_reader`, in a worker thread;
        until then this raises :class:`Busy`."""
        if not self._reader_lock.acquire(blocking=False):
            raise Busy  # another thread's loop is reading right now
        try:
            conn = self._kept_reader
            if not _usable(conn):
                raise Busy
            try:
                with conn.begin():
                    yield conn
            except (sa.exc.OperationalError, sqlite3.OperationalError) as exc:
                if not _would_wait(exc):
                    raise
                self._close_kept_reader()
                raise Busy from None
        finally:
            self._reader_lock.release()

    def keep_reader(self) -> None:
        """Open the connection :meth:`read_nowait` reads on, if it is not open (SQLite only;
        blocking: call it from a worker thread)."""
        if not self.sqlite or _usable(self._kept_reader):
            return
        conn = self._nowait_connection()
        with self._reader_lock:
            if not _usable(self._kept_reader):
                self._close_kept_reader()  # a dead one, if any
                self._kept_reader = conn
                return
        _discard(conn)  # another thread was first

    def start_checkpoints(self) -> None:
        """Checkpoint a SQLite file's WAL on a background thread from now on, instead of in
        whichever commit fills it (:mod:`freshid.storage.checkpoints`); for long-running servers.
        Call it before the store is busy: connections already open are closed and reopened."""
        path = sqlite_path(self.url)
        if not self.sqlite or not path or self._checkpointer is not None:
            return
        self._sqlite_options.background_checkpoints = True
        self.close_kept_connection()
        self.engine.dispose()  # idle pooled connections reconnect with the new setting
        self._checkpointer = Checkpointer(path)
        self._checkpointer.start()

    def close_kept_connection(self) -> None:
        conn, self._kept_conn = self._kept_conn, None
        _discard(conn)
        with self._reader_lock:
            self._close_kept_reader()

    def _close_kept_reader(self) -> None:
        conn, self._kept_reader = self._kept_reader, None
        _discard(conn)

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
            self._sqlite_options.background_checkpoints = False
        self.close_kept_connection()
        self.engine.dispose()
