"""kill -9 in the middle of a delivery loses nothing: after a restart every event arrives, with the
webhook-id it had before.

``freshid worker`` runs as a subprocess against the shared database; the receiver stalls the first
attempts so the worker is killed while requests are in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from standardwebhooks import Webhook

from freshid.events import outbox
from freshid.events import webhooks as hooks
from freshid.events.catalog import EventType
from freshid.storage.database import Database
from freshid.storage.tables_events import webhook_deliveries
from tests.events.receiver import receiver

EVENTS = 12


@contextmanager
def worker_process(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "freshid.cli",
            "worker",
            "--attempt-timeout",
            "3",
            "--lease-slack",
            "1",
            "--poll-interval",
            "0.1",
            "--concurrency",
            "4",
            "--max-seconds",
            "90",
        ],
        env={**os.environ, "FRESHID_DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _wait(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_kill_9_mid_delivery_then_restart_delivers_everything_with_the_same_ids(
    db: Database, database_url: str
) -> None:
    now = int(time.time())
    with receiver() as rx:
        rx.stall = threading.Event()
        with db.write() as conn:
            _, secret = hooks.create(conn, rx.url, [EventType.SESSION_CREATED.value], "", now)
        for i in range(EVENTS):
            with db.write() as conn:
                outbox.record(conn, EventType.SESSION_CREATED, now, session_id=f"s{i}")

        with worker_process(database_url) as first:
            # Up to --concurrency requests reach the receiver and stall there.
            assert _wait(lambda: len(rx.requests) >= 4, 30), "worker sent nothing"
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        stalled = set(rx.ids())
        with db.read() as conn:
            rows = conn.execute(sa.select(webhook_deliveries)).all()
        assert len(rows) == EVENTS and not any(r.status == "succeeded" for r in rows)
        ids_before = {r.event_id: r.message_id for r in rows}

        rx.stall.set()  # the receiver answers from now on (also to the dead worker's requests)
        rx.stall = None
        with worker_process(database_url):
            # The killed claims come back when their lease (2 x timeout + slack) runs out.
            def done() -> bool:
                with db.read() as conn:
                    return (
                        conn.execute(
                            sa.select(sa.func.count())
                            .select_from(webhook_deliveries)
                            .where(webhook_deliveries.c.status == "succeeded")
                        ).scalar_one()
                        == EVENTS
                    )

            assert _wait(done, 60), "not every delivery succeeded after the restart"

    with db.read() as conn:
        rows = conn.execute(sa.select(webhook_deliveries)).all()
    assert {r.event_id: r.message_id for r in rows} == ids_before
    received = rx.ids()
    assert set(received) == set(ids_before.values())  # every event arrived...
    assert stalled <= set(received)
    # ...and the ones in flight at the kill arrived again, with the same webhook-id.
    redelivered = [i for i in stalled if received.count(i) >= 2]
    assert redelivered
    for r in rx.requests:
        Webhook(secret).verify(r.body, r.headers)
