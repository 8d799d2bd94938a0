"""Short writes of one turn of the event loop share a commit, and each still behaves as its own
transaction: a failed one leaves nothing, exactly-once updates stay exactly-once, and nobody
hears of success before the commit that makes it durable. On SQLite the units run on the loop
(``GroupCommit``); on PostgreSQL in a worker thread (``ThreadedGroupCommit``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import anyio
import pytest
import sqlalchemy as sa

from freshid.clock import FrozenClock
from freshid.events import audit, outbox
from freshid.events.catalog import EventType
from freshid.provider import Provider
from freshid.settings import load_settings
from freshid.storage import migrate, prepared
from freshid.storage.group_commit import GroupCommit, ThreadedGroupCommit
from freshid.storage.prepared import Prepared
from freshid.storage.tables import events, login_failures, refresh_tokens

_INSERT = prepared.insert(login_failures, ("bucket", "window_start", "failures"))
_CLAIM = Prepared(
    login_failures.update()
    .where(login_failures.c.bucket == sa.bindparam("bucket"), login_failures.c.failures == 0)
    .values(failures=1)
)


@pytest.fixture
def provider(database_url: str) -> Iterator[Provider]:
    settings = load_settings(environ={}, database_url=database_url)
    provider = Provider(settings, FrozenClock(1_700_000_000))
    migrate.upgrade(provider.db)
    yield provider
    provider.db.dispose()


def _counts(provider: Provider) -> tuple[int, int]:
    """(transactions, units in them); on PostgreSQL only transactions of two units or more."""
    group: GroupCommit | ThreadedGroupCommit | None = (
        provider._group_commit or provider._threaded_group_commit
    )
    assert group is not None
    return group.groups, group.units


def _buckets(provider: Provider) -> set[str]:
    with provider.db.read() as conn:
        return set(conn.execute(sa.select(login_failures.c.bucket)).scalars())


def _insert(bucket: str) -> Callable[[sa.Connection], str]:
    def unit(conn: sa.Connection) -> str:
        _INSERT.execute(conn, bucket=bucket, window_start=0, failures=0)
        return bucket

    return unit


def test_writes_of_one_turn_share_one_commit_and_are_durable_when_answered(
    provider: Provider,
) -> None:
    async def main() -> list[str]:
        results = await asyncio.gather(*(provider.write_short(_insert(f"b{i}")) for i in range(5)))
        # Answered only after the commit: another connection sees every row now.
        assert _buckets(provider) == {f"b{i}" for i in range(5)}
        return results

    assert asyncio.run(main()) == [f"b{i}" for i in range(5)]
    assert _counts(provider) == (1, 5)

    async def one_at_a_time() -> None:
        for i in range(3):
            await provider.write_short(_insert(f"s{i}"))

    asyncio.run(one_at_a_time())  # nothing waits for company
    assert _buckets(provider) == {f"b{i}" for i in range(5)} | {"s0", "s1", "s2"}
    assert _counts(provider) == ((4, 8) if provider.db.sqlite else (1, 5))


def test_a_failing_write_leaves_nothing_and_the_rest_of_its_group_commits(
    provider: Provider,
) -> None:
    def fails(conn: sa.Connection) -> str:
        _INSERT.execute(conn, bucket="lost", window_start=0, failures=0)
        raise RuntimeError("the unit fails after its statement ran")

    async def main() -> list[object]:
        return await asyncio.gather(
            provider.write_short(_insert("before")),
            provider.write_short(fails),
            provider.write_short(_insert("after")),
            return_exceptions=True,
        )

    before, failed, after = asyncio.run(main())
    assert (before, after) == ("before", "after")
    assert isinstance(failed, RuntimeError)
    assert _buckets(provider) == {"before", "after"}
    if not provider.db.sqlite:  # rolled back whole, then each unit alone
        assert provider._threaded_group_commit is not None
        assert provider._threaded_group_commit.fallbacks == 1


def test_exactly_once_holds_between_writes_in_one_group(provider: Provider) -> None:
    asyncio.run(provider.write_short(_insert("code")))

    async def main() -> list[int]:
        claim = lambda conn: _CLAIM.execute(conn, bucket="code")  # noqa: E731
        return await asyncio.gather(*(provider.write_short(claim) for _ in range(4)))

    assert sorted(asyncio.run(main())) == [0, 0, 0, 1]


def test_a_failed_commit_fails_every_write_of_the_group(provider: Provider) -> None:
    if not provider.db.sqlite:
        pytest.skip("a commit-time failure is staged with SQLite's deferred foreign keys")

    def violates_at_commit(conn: sa.Connection) -> str:
        # A foreign key checked only at COMMIT: the group's commit itself fails.
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        conn.execute(
            refresh_tokens.insert().values(token_digest="d", grant_id="no-such-grant", created_at=1)
        )
        return "dangling"

    async def main() -> list[object]:
        return await asyncio.gather(
            provider.write_short(_insert("innocent")),
            provider.write_short(violates_at_commit),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    assert all(isinstance(r, sa.exc.IntegrityError) for r in results), results
    assert _buckets(provider) == set()
    # The store is usable again at once.
    assert asyncio.run(provider.write_short(_insert("next"))) == "next"
    assert _buckets(provider) == {"next"}


def test_a_caller_that_gives_up_does_not_cancel_the_others_commit(provider: Provider) -> None:
    async def main() -> str:
        impatient = asyncio.ensure_future(provider.write_short(_insert("impatient")))
        patient = asyncio.ensure_future(provider.write_short(_insert("patient")))
        await asyncio.sleep(0)  # both units ran; the commit is next
        impatient.cancel()
        result = await patient
        with pytest.raises(asyncio.CancelledError):
            await impatient
        return result

    assert asyncio.run(main()) == "patient"
    # The unit had run before its caller left: like a reply lost on the way, it stands.
    assert _buckets(provider) == {"impatient", "patient"}


def test_the_events_of_a_group_join_the_audit_chain_in_the_units_order(
    provider: Provider,
) -> None:
    def unit(i: int) -> Callable[[sa.Connection], str]:
        def write(conn: sa.Connection) -> str:
            _INSERT.execute(conn, bucket=f"e{i}", window_start=0, failures=0)
            outbox.record(conn, EventType.TOKEN_REFRESHED, 1_700_000_000, grant_id=f"g{i}")
            if i == 3:
                raise RuntimeError("fails after recording its event")
            return f"e{i}"

        return write

    async def main() -> list[object]:
        return await asyncio.gather(
            *(provider.write_short(unit(i)) for i in range(6)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert isinstance(results.pop(3), RuntimeError)
    assert results == ["e0", "e1", "e2", "e4", "e5"]
    with provider.db.read() as conn:
        order = conn.execute(sa.select(events.c.data).order_by(events.c.id)).scalars().all()
    # The failed unit's event went with the rest of it; the others' are chained in order.
    assert [d["grant_id"] for d in order] == ["g0", "g1", "g2", "g4", "g5"]
    report = audit.verify(provider.db.read)
    assert report.ok and report.events == 5


_BUMP = Prepared(
    login_failures.update()
    .where(login_failures.c.bucket == sa.bindparam("bucket"))
    .values(failures=login_failures.c.failures + 1)
)


def test_a_deadlock_victim_runs_again_and_every_write_lands_once(provider: Provider) -> None:
    if provider.db.sqlite:
        pytest.skip("SQLite has one writer at a time: no deadlock to detect")
    with provider.db.write() as conn:
        for bucket in ("a", "b"):
            _INSERT.execute(conn, bucket=bucket, window_start=0, failures=0)
    barrier = threading.Barrier(2, timeout=10)
    attempts = {"ab": 0, "ba": 0}

    def crossing(first: str, second: str) -> Callable[[sa.Connection], str]:
        name = first + second

        def unit(conn: sa.Connection) -> str:
            attempts[name] += 1
            _BUMP.execute(conn, bucket=first)
            if attempts[name] == 1:
                barrier.wait()  # each holds its first row and now asks for the other's
            _BUMP.execute(conn, bucket=second)
            return name

        return unit

    # Two committers, so that each unit runs alone in its own transaction, at the same time.
    one = ThreadedGroupCommit(provider.db, anyio.CapacityLimiter(2))
    other = ThreadedGroupCommit(provider.db, anyio.CapacityLimiter(2))

    async def main() -> list[str]:
        return await asyncio.gather(one.run(crossing("a", "b")), other.run(crossing("b", "a")))

    assert asyncio.run(main()) == ["ab", "ba"]
    # PostgreSQL picked one as the deadlock victim and rolled it back; it ran again.
    assert sorted(attempts.values()) == [1, 2]
    with provider.db.read() as conn:
        rows = conn.execute(sa.select(login_failures.c.bucket, login_failures.c.failures))
        counts = {bucket: failures for bucket, failures in rows}
    assert counts == {"a": 2, "b": 2}  # the victim's first run left nothing


def _hold_the_store(provider: Provider, seconds: float, held: threading.Event) -> None:
    """Another writer: a worker thread's transaction that keeps the store locked a while."""
    with provider.db.write() as conn:
        _INSERT.execute(conn, bucket="thread", window_start=0, failures=0)
        held.set()
        threading.Event().wait(seconds)


def test_writes_wait_on_the_loop_for_another_writer_and_still_share_a_commit(
    provider: Provider,
) -> None:
    """Not each in a worker thread with a commit of its own: those took the lock from one
    another, and the server stayed at half its rate after a moment's lock."""
    if provider._group_commit is None:
        pytest.skip("PostgreSQL's units always run in worker threads")
    loop_thread: list[int] = []

    def unit(bucket: str) -> Callable[[sa.Connection], int]:
        def run(conn: sa.Connection) -> int:
            _INSERT.execute(conn, bucket=bucket, window_start=0, failures=0)
            return threading.get_ident()

        return run

    async def main() -> list[int]:
        loop_thread.append(threading.get_ident())
        held = threading.Event()
        holder = asyncio.ensure_future(
            anyio.to_thread.run_sync(_hold_the_store, provider, 0.2, held)
        )
        await anyio.to_thread.run_sync(held.wait)
        threads = await asyncio.gather(*(provider.write_short(unit(f"w{i}")) for i in range(5)))
        await holder
        return threads

    threads = asyncio.run(main())
    assert threads == loop_thread * 5
    assert _counts(provider) == (1, 5)
    assert _buckets(provider) == {"thread"} | {f"w{i}" for i in range(5)}


def test_a_write_goes_to_a_worker_thread_when_the_lock_outlasts_the_wait(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    if provider._group_commit is None:
        pytest.skip("PostgreSQL's units always run in worker threads")
    monkeypatch.setattr("freshid.storage.group_commit.LOCKED_WAIT", 0.05)

    async def main() -> int:
        held = threading.Event()
        holder = asyncio.ensure_future(
            anyio.to_thread.run_sync(_hold_the_store, provider, 0.3, held)
        )
        await anyio.to_thread.run_sync(held.wait)
        answered = await provider.write_short(lambda conn: threading.get_ident())
        await holder
        return answered

    assert asyncio.run(main()) != threading.get_ident()
    assert _counts(provider) == (0, 0)  # no group: the thread's own transaction
