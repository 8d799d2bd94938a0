"""A server's SQLite WAL is checkpointed by a thread of its own, not inside request commits, and
still checkpointed: the log does not outgrow what was written since the last round, and it is
rewound even when readers always overlap."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from freshid.storage import migrate
from freshid.storage.checkpoints import Checkpointer
from freshid.storage.database import Database
from freshid.storage.tables import login_failures


def _autocheckpoint(db: Database) -> int:
    with db.read() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _write_pages(db: Database, rows: int, prefix: str) -> None:
    for i in range(rows):
        with db.write() as conn:
            conn.execute(
                login_failures.insert().values(
                    bucket=f"{prefix}-{i}-" + "x" * 200, window_start=0, failures=1
                )
            )


def _wal_frames(path: Path) -> tuple[int, int]:
    """``(frames in the log, frames checkpointed)`` as another connection sees them."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(log), int(done)
    finally:
        conn.close()


def _checkpoint_threads() -> int:
    return sum(t.name == "freshid-wal-checkpoint" for t in threading.enumerate())


def test_a_server_checkpoints_in_the_background_and_stops_on_dispose(tmp_path: Path) -> None:
    path = tmp_path / "freshid.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    assert _autocheckpoint(db) == 1000  # SQLite's default until a server takes over
    threads_before = _checkpoint_threads()

    db.start_checkpoints()
    try:
        assert _autocheckpoint(db) == 0  # commits no longer checkpoint...
        assert _checkpoint_threads() == threads_before + 1
        checkpointer = db._checkpointer
        assert checkpointer is not None
        rounds = checkpointer.checkpoints
        _write_pages(db, 300, "a")  # ~300 commits, each appending to the table and its index
        deadline = time.monotonic() + 5
        while checkpointer.checkpoints < rounds + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # ...but the thread did: a round after the writes found everything already copied.
        log, done = _wal_frames(path)
        assert log == done
        assert checkpointer.checkpoints >= rounds + 2
    finally:
        db.dispose()
    assert _checkpoint_threads() == threads_before
    with sqlite3.connect(path) as check:
        count = check.execute("SELECT count(*) FROM login_failures").fetchone()[0]
    assert count == 300


def test_commits_of_a_process_without_the_thread_still_checkpoint(tmp_path: Path) -> None:
    """A CLI command next to a running server keeps SQLite's automatic checkpoints."""
    path = tmp_path / "freshid.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    try:
        _write_pages(db, 1500, "b")  # at least two frames a commit: 3,000 without checkpoints
        log, _ = _wal_frames(path)
        assert log < 1100  # restarted after an automatic checkpoint at 1,000 pages
        assert db._checkpointer is None
    finally:
        db.dispose()


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)


def _overlapping_readers(path: Path, stop: threading.Event) -> None:
    """Two connections taking turns so that a read transaction is always open, each begun after
    the other: a busy server's requests."""
    conns = [_connect(path), _connect(path)]
    try:
        conns[0].execute("BEGIN")
        conns[0].execute("SELECT count(*) FROM t").fetchone()
        turn = 0
        while not stop.is_set():
            following = conns[1 - turn]
            following.execute("BEGIN")
            following.execute("SELECT count(*) FROM t").fetchone()
            conns[turn].execute("COMMIT")
            turn = 1 - turn
            time.sleep(0.001)
        conns[turn].execute("COMMIT")
    finally:
        for conn in conns:
            conn.close()


def _log_after_commits(path: Path, checkpointer: Checkpointer, commits: int) -> int:
    """Frames in the log after ``commits`` one-row commits made while readers overlap and the
    checkpointer runs."""
    writer = _connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (v BLOB)")
    stop = threading.Event()
    readers = threading.Thread(target=_overlapping_readers, args=(path, stop))
    readers.start()
    checkpointer.start()
    try:
        for _ in range(commits):
            writer.execute("INSERT INTO t VALUES (randomblob(100))")
            time.sleep(0.0002)
    finally:
        checkpointer.stop()
        stop.set()
        readers.join()
    log, _ = _wal_frames(path)
    writer.close()
    return log


def test_the_log_is_rewound_although_readers_always_overlap(tmp_path: Path) -> None:
    commits = 2000
    passive_only = Checkpointer(str(tmp_path / "a.db"), interval=0.01, restart_frames=10**9)
    # The starvation a busy server met: every frame copied, the log never started again.
    assert _log_after_commits(tmp_path / "a.db", passive_only, commits) >= commits
    assert passive_only.restarts == 0

    restarting = Checkpointer(str(tmp_path / "b.db"), interval=0.01, restart_frames=200)
    log = _log_after_commits(tmp_path / "b.db", restarting, commits)
    assert restarting.restarts >= 2
    assert log < commits / 2
    with sqlite3.connect(tmp_path / "b.db") as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == commits
