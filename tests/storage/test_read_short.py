"""Short reads on the event loop (``Provider.read_short``, ``Database.read_nowait``): on SQLite
they run on the loop's own thread and never make it wait; when SQLite would, the read goes to a
worker thread instead and still answers. On PostgreSQL they always go to a worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from freshid.clock import FrozenClock
from freshid.provider import Provider
from freshid.settings import load_settings
from freshid.storage import migrate
from freshid.storage.database import Busy, sqlite_path
from freshid.storage.tables import login_failures


@pytest.fixture
def provider(database_url: str) -> Iterator[Provider]:
    settings = load_settings(environ={}, database_url=database_url)
    provider = Provider(settings, FrozenClock(1_700_000_000))
    migrate.upgrade(provider.db)
    with provider.db.write() as conn:
        conn.execute(login_failures.insert().values(bucket="b", window_start=0, failures=3))
    yield provider
    provider.db.dispose()


def _failures(conn: sa.Connection) -> tuple[int, int]:
    """(the row's failures, the thread that read it)."""
    found = conn.execute(sa.select(login_failures.c.failures)).scalar_one()
    return found, threading.get_ident()


async def _reader_and_loop(provider: Provider) -> tuple[int, int]:
    _, reader = await provider.read_short(_failures)
    return reader, threading.get_ident()


def test_a_short_read_runs_on_the_loop_on_sqlite_and_in_a_worker_on_postgresql(
    provider: Provider,
) -> None:
    async def main() -> tuple[int, int, int]:
        found, first = await provider.read_short(_failures)  # opens the loop's reader, if any
        assert found == 3
        _, second = await provider.read_short(_failures)
        return first, second, threading.get_ident()

    first, second, loop_thread = asyncio.run(main())
    assert first != loop_thread
    assert (second == loop_thread) is provider.db.sqlite


def test_while_sqlite_makes_readers_wait_the_loop_goes_on_and_the_read_answers(
    provider: Provider,
) -> None:
    if not provider.db.sqlite:
        pytest.skip("PostgreSQL reads always run in a worker thread")
    provider.db.close_kept_connection()  # the holder needs the only open connection
    provider.db.engine.dispose()
    # A connection in exclusive locking mode keeps its lock after its write commits: until it
    # closes, every other connection is refused (https://sqlite.org/pragma.html#pragma_locking_mode).
    holder = sqlite3.connect(sqlite_path(provider.db.url), check_same_thread=False)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("UPDATE login_failures SET failures = 4")
    holder.commit()
    with pytest.raises(Busy), provider.db.read_nowait() as conn:
        _failures(conn)
    released = threading.Timer(0.3, holder.close)

    async def main() -> tuple[int, int, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        released.start()
        found, reader = await provider.read_short(_failures)
        ticker.cancel()
        return found, reader, ticks

    try:
        found, reader, ticks = asyncio.run(main())
    finally:
        released.join()
    assert found == 4  # the holder's write, read once its lock was gone
    assert reader != threading.get_ident()
    assert ticks >= 10  # the loop ran on through the 0.3 s wait
    reader, loop_thread = asyncio.run(_reader_and_loop(provider))
    assert reader == loop_thread  # and short reads are back on it


def test_a_read_refused_as_busy_on_the_loop_runs_again_in_a_worker(provider: Provider) -> None:
    if not provider.db.sqlite:
        pytest.skip("PostgreSQL reads always run in a worker thread")
    asyncio.run(provider.read_short(_failures))  # opens the loop's reader
    runs: list[int] = []

    def busy_once(conn: sa.Connection) -> tuple[int, int]:
        runs.append(threading.get_ident())
        if len(runs) == 1:
            refused = sqlite3.OperationalError("database is locked")
            refused.sqlite_errorcode = 5  # SQLITE_BUSY, as the driver sets it
            raise refused
        return _failures(conn)

    async def main() -> tuple[tuple[int, int], int]:
        return await provider.read_short(busy_once), threading.get_ident()

    (found, reader), loop_thread = asyncio.run(main())
    assert found == 3
    assert runs == [loop_thread, reader] and reader != loop_thread
