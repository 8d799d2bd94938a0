"""Write-ahead-log checkpoints for SQLite, on a thread of their own (https://sqlite.org/wal.html,
"Checkpointing" and "Automatic Checkpoint"; https://sqlite.org/pragma.html#pragma_wal_checkpoint).

By default SQLite checkpoints automatically: the commit that takes the WAL past 1,000 pages
copies them into the database file and syncs it, inside that commit. Whichever request happens to
make that commit pays for it — on the event loop, for the token endpoint's transactions — and it
was about half of a refresh grant's commit time on average, and its slowest requests
(docs/benchmarks.md). A server turns the automatic checkpoint off on its connections and runs
``PRAGMA wal_checkpoint(PASSIVE)`` here every :data:`INTERVAL` seconds instead: a passive
checkpoint never waits for readers or writers, and SQLite does its copying and syncing without
the GIL, so requests carry on meanwhile. Frames written again between two checkpoints (the chain
head, the newest leaf of every append-only table) are copied once, not once per commit.

A passive checkpoint copies frames but never rewinds the log: SQLite starts writing the WAL from
its beginning again only when a commit finds every frame copied *and* no reader still reading from
the log. A busy server always has one: its readers overlap, and each begins on a log the last
commit has just made longer, so the WAL grew without end ("checkpoint starvation" in wal.html: a
3-minute soak left a 1.3 GB WAL, and the shared-memory index that maps every frame, read by every
query, added about 1 MiB of resident memory a minute). So once the log holds more than
:data:`RESTART_FRAMES`, the round is ``wal_checkpoint(RESTART)``: it takes the writer lock for at
most :data:`RESTART_WAIT_MS`, copies what is left (readers that begin meanwhile read the database
file alone) and waits for the readers already in the log to finish; the next commit then rewinds
the log, and ``journal_size_limit`` cuts the file back to :data:`JOURNAL_SIZE_LIMIT`. If a reader
outlasts the wait, SQLite gives the lock back and the next round tries again. Commits that find
the lock taken meanwhile wait on the event loop (:meth:`GroupCommit._begin
<freshid.storage.group_commit.GroupCommit._begin>`).

Only a process that runs these checkpoints turns the automatic ones off: a CLI command or a
migration keeps SQLite's default, and the last connection to close checkpoints anyway.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

INTERVAL = 0.25
"""Seconds between checkpoints. At the token endpoint's peak (~14 pages per refresh, ~1,000
refreshes/s) the log grows by ~15,000 pages a second; a quarter of a second of that is a few MiB."""

JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
"""Bytes the WAL file is cut back to when SQLite restarts it after a burst."""

RESTART_FRAMES = JOURNAL_SIZE_LIMIT // 4096
"""Frames (pages of the default 4 KiB) in the log above which a round rewinds it: 64 MiB, about
a second of the token endpoint's peak."""

RESTART_WAIT_MS = 5
"""How long a restarting round may wait for the writer lock and then, holding it, for the readers
still in the log (single requests' reads, well under a millisecond each). Measured with 16
refreshes in flight: 50 ms cost 15-20 % of the rate against passive checkpoints alone; 5 ms
matched them and kept the WAL near 64 MiB; 0 (no waiting) matched them too, but the restarts
mostly found a reader and the WAL reached 500 MiB before one got through."""

_log = logging.getLogger(__name__)


class Checkpointer:
    """A daemon thread checkpointing one SQLite database's WAL until :meth:`stop`."""

    def __init__(
        self, path: str, interval: float = INTERVAL, restart_frames: int = RESTART_FRAMES
    ) -> None:
        self.path = path
        self.interval = interval
        self.restart_frames = restart_frames
        self.checkpoints = 0
        """Checkpoints that ran."""
        self.restarts = 0
        """Rounds that rewound the log (``wal_checkpoint(RESTART)`` that was not busy)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="freshid-wal-checkpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def checkpoint(self, conn: sqlite3.Connection, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """One checkpoint: ``(busy, frames in the log, frames checkpointed)``."""
        row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.checkpoints += 1
        return int(row[0]), int(row[1]), int(row[2])

    def round(self, conn: sqlite3.Connection) -> None:
        """A passive checkpoint, then a restarting one if the log has grown past
        :attr:`restart_frames`."""
        _, log, _ = self.checkpoint(conn)
        if log > self.restart_frames:
            busy, _, _ = self.checkpoint(conn, "RESTART")
            self.restarts += not busy

    def _run(self) -> None:
        conn = sqlite3.connect(
            self.path,
            timeout=RESTART_WAIT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.round(conn)
                except sqlite3.Error as exc:
                    # Another process checkpointing at the same moment, or a transient I/O
                    # error: the next round tries again; SQLite's own WAL stays consistent.
                    _log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            conn.close()
