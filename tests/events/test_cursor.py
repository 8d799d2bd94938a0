"""Reading events forward with the cursor never skips and never repeats, under concurrent writers.

On PostgreSQL a plain sequence would let a row with a lower id commit after a higher one was read;
the chain-head lock makes ids follow commit order (freshid.events.chain). This test pages through
the events while writer threads keep committing, some transactions slow, some rolled back.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from freshid.events import api as event_api
from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.storage.database import Database

NOW = 1_800_000_000


def _writers(
    db: Database, stop: threading.Event, committed: list[int], errors: list[object]
) -> list[threading.Thread]:
    lock = threading.Lock()

    def writer(w: int) -> None:
        rng = random.Random(w)
        try:
            for i in range(60):
                if stop.is_set():
                    return
                kind = EventType.SESSION_CREATED if i % 2 else EventType.TOKEN_ISSUED
                try:
                    with db.write() as conn:
                        new_id = outbox.record(conn, kind, NOW + i, user_id=f"u{w}", n=i)
                        time.sleep(rng.choice([0, 0, 0.001, 0.003]))  # a slow commit
                        if rng.random() < 0.1:
                            raise KeyError("roll back")
                except KeyError:
                    continue
                with lock:
                    committed.append(new_id)
        except BaseException as exc:
            errors.append(exc)

    return [threading.Thread(target=writer, args=(w,)) for w in range(5)]


@pytest.mark.parametrize("filtered", [False, True])
def test_forward_reading_never_skips_or_repeats(db: Database, filtered: bool) -> None:
    stop = threading.Event()
    committed: list[int] = []
    errors: list[object] = []
    threads = _writers(db, stop, committed, errors)
    flt = event_api.EventFilter(types=("session.created",) if filtered else ())
    seen: list[int] = []
    after = 0
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            writing = any(t.is_alive() for t in threads)
            with db.read() as conn:
                page = event_api.page(conn, flt, after, 7)
            seen.extend(e["id"] for e in page.events)
            after = event_api.decode_cursor(page.next_cursor)
            if not writing and not page.has_more and not page.events:
                break
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    # One more read after the writers stopped: nothing new may appear behind the cursor.
    with db.read() as conn:
        tail = event_api.page(conn, flt, after, 1000)
    seen.extend(e["id"] for e in tail.events)
    assert len(seen) == len(set(seen)), "an event was read twice"
    assert seen == sorted(seen)
    with db.read() as conn:
        every = event_api.page(conn, flt, 0, 1000).events
    expected = [e["id"] for e in every]
    assert len(expected) > 50
    assert seen == expected, "an event was skipped"


def test_cursor_is_opaque_and_checked() -> None:
    cursor = event_api.encode_cursor(42)
    assert "42" not in cursor
    assert event_api.decode_cursor(cursor) == 42
    for bad in ["", "!!", "e30", event_api.encode_cursor(1)[:-2], "x" * 300]:
        with pytest.raises(event_api.CursorError):
            event_api.decode_cursor(bad)


def test_filters_and_limits(db: Database) -> None:
    with db.write() as conn:
        outbox.record(conn, EventType.SESSION_CREATED, 100, user_id="a", session_id="s1")
        outbox.record(conn, EventType.SESSION_REVOKED, 200, user_id="a", session_id="s1")
        outbox.record(conn, EventType.TOKEN_ISSUED, 300, user_id="b", client_id="c1")
    with db.read() as conn:

        def ids(**kw: object) -> list[int]:
            flt = event_api.EventFilter(**kw)  # type: ignore[arg-type]
            return [e["id"] for e in event_api.page(conn, flt, 0, 100).events]

        assert ids() == [1, 2, 3]
        assert ids(user_id="a") == [1, 2]
        assert ids(session_id="s1", types=("session.revoked",)) == [2]
        assert ids(client_id="c1") == [3]
        assert ids(since=200) == [2, 3]
        assert ids(since=100, until=300) == [1, 2]
        assert ids(types=("session.created", "token.issued")) == [1, 3]
        first = event_api.page(conn, event_api.EventFilter(), 0, 2)
        assert first.has_more and [e["id"] for e in first.events] == [1, 2]
        rest = event_api.page(
            conn, event_api.EventFilter(), event_api.decode_cursor(first.next_cursor), 2
        )
        assert not rest.has_more and [e["id"] for e in rest.events] == [3]
        # A short filtered page moves the cursor to the head: polling does not rescan.
        short = event_api.page(conn, event_api.EventFilter(user_id="a"), 0, 10)
        assert event_api.decode_cursor(short.next_cursor) == 3
    with pytest.raises(ValueError):
        event_api.EventFilter(types=("no.such",)).validate()
