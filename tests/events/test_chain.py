"""The audit chain: one linear chain under concurrent writers, tampering detected, checkpoints."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
import sqlalchemy as sa

from freshid.events import audit, chain, outbox
from freshid.events.catalog import EventType
from freshid.storage import keys as key_store
from freshid.storage.database import Database
from freshid.storage.tables import events
from freshid.storage.tables_events import event_chain_head
from freshid.tokens.keys import KeyRing

NOW = 1_800_000_000


def _write(db: Database, n: int, **data: object) -> None:
    for i in range(n):
        with db.write() as conn:
            outbox.record(
                conn, EventType.SESSION_CREATED, NOW + i, user_id=f"u{i}", session_id="s", **data
            )


def _verify(db: Database, *cps: audit.Checkpoint) -> audit.Report:
    return audit.verify(db.read, cps)


def test_events_form_one_chain(db: Database) -> None:
    _write(db, 5, note="é ✓", nested={"b": [1, 2], "a": None})
    with db.read() as conn:
        rows = conn.execute(sa.select(events).order_by(events.c.id)).all()
    assert [r.id for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == chain.GENESIS
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    for r in rows:
        assert chain.row_hash(r._mapping) == r.hash
    report = _verify(db)
    assert report.ok and report.events == 5 and report.last_id == 5
    assert report.first_break is None


def test_the_hash_is_sha256_of_canonical_json(db: Database) -> None:
    import hashlib

    with db.write() as conn:
        outbox.record(conn, EventType.USER_CREATED, NOW, user_id="u1", tags=("x", "y"))
    with db.read() as conn:
        row = conn.execute(sa.select(events)).one()
    body = (
        '{"client_id":null,"data":{"tags":["x","y"]},"id":1,"occurred_at":1800000000,'
        f'"prev_hash":"{chain.GENESIS}","session_id":null,"type":"user.created","user_id":"u1"}}'
    )
    assert row.hash == hashlib.sha256(body.encode()).hexdigest()


def test_an_edited_row_is_named(db: Database) -> None:
    _write(db, 6)
    with db.write() as conn:
        conn.execute(events.update().where(events.c.id == 3).values(user_id="mallory"))
    report = _verify(db)
    assert not report.ok
    assert report.first_break is not None and report.first_break.event_id == 3
    assert "edited" in report.first_break.reason
    assert report.broken_links == 1


def test_a_deleted_row_breaks_the_next_link(db: Database) -> None:
    _write(db, 6)
    with db.write() as conn:
        conn.execute(events.delete().where(events.c.id == 4))
    report = _verify(db)
    assert report.first_break is not None and report.first_break.event_id == 5
    assert "deleted" in report.first_break.reason


def test_the_first_row_deleted_is_detected(db: Database) -> None:
    _write(db, 3)
    with db.write() as conn:
        conn.execute(events.delete().where(events.c.id == 1))
    report = _verify(db)
    assert report.first_break is not None and report.first_break.event_id == 2


def test_reordered_rows_are_detected(db: Database) -> None:
    _write(db, 5)
    with db.write() as conn:
        # Swap the ids of events 2 and 3 (through a free id), keeping each row's contents.
        conn.execute(events.update().where(events.c.id == 2).values(id=1000))
        conn.execute(events.update().where(events.c.id == 3).values(id=2))
        conn.execute(events.update().where(events.c.id == 1000).values(id=3))
    report = _verify(db)
    assert report.first_break is not None and report.first_break.event_id == 2


def test_a_truncated_tail_is_detected_from_the_head(db: Database) -> None:
    _write(db, 5)
    with db.write() as conn:
        conn.execute(events.delete().where(events.c.id > 3))
    report = _verify(db)
    assert report.first_break is not None
    assert "truncation" in report.first_break.reason


def _ring(db: Database) -> KeyRing:
    with db.write() as conn:
        key_store.ensure_active(conn, NOW)
        return KeyRing(key_store.load_all(conn), NOW, 3600, 3600)


def test_checkpoint_detects_truncation_and_rollback_behind_it(db: Database) -> None:
    _write(db, 4)
    ring = _ring(db)  # writes signing_key.rotated: event 5
    with db.read() as conn:
        document = json.dumps(audit.make_checkpoint(conn, ring, "https://id.example", NOW))
    doc = json.loads(document)
    assert doc["event_id"] == 5 and doc["format"] == audit.CHECKPOINT_FORMAT
    cp = audit.read_checkpoint(document, ring.published)
    assert (cp.event_id, cp.hash) == (5, doc["hash"])
    _write(db, 2)
    assert _verify(db, cp).ok

    # Roll the log back to event 3, consistently (head rewritten too): the chain alone is fine.
    with db.write() as conn:
        conn.execute(events.delete().where(events.c.id > 3))
        h3 = conn.execute(sa.select(events.c.hash).where(events.c.id == 3)).scalar_one()
        conn.execute(event_chain_head.update().values(last_id=3, last_hash=h3))
    assert _verify(db).ok
    report = _verify(db, cp)
    assert not report.ok
    assert "truncated or rolled back" in report.checkpoints[0]["reason"]

    # ...and writing new events after the roll-back does not hide it: event 5 is not the same.
    _write(db, 3)
    report = _verify(db, cp)
    assert not report.ok and "different hash" in report.checkpoints[0]["reason"]


def test_a_forged_checkpoint_is_refused(db: Database) -> None:
    _write(db, 2)
    ring = _ring(db)
    with db.read() as conn:
        doc = audit.make_checkpoint(conn, ring, "https://id.example", NOW)
    header, payload, sig = doc["jws"].split(".")
    claims = json.loads(jws_b64decode(payload))
    claims["event_id"] = 1
    from freshid.tokens.jws import b64url_encode

    forged = f"{header}.{b64url_encode(json.dumps(claims).encode())}.{sig}"
    with pytest.raises(audit.CheckpointError):
        audit.read_checkpoint(json.dumps({**doc, "jws": forged}), ring.published)
    with pytest.raises(audit.CheckpointError):
        audit.read_checkpoint("[]", ring.published)


def jws_b64decode(text: str) -> bytes:
    from freshid.tokens.jws import b64url_decode

    return b64url_decode(text)


def test_concurrent_writers_make_one_gapless_chain_visible_in_commit_order(db: Database) -> None:
    """Ids become visible as a prefix 1..n at every moment: id order is commit order."""
    writers, per_writer = 6, 25
    stop = threading.Event()
    errors: list[BaseException] = []
    observed_gaps: list[list[int]] = []

    def writer(w: int) -> None:
        try:
            for i in range(per_writer):
                with db.write() as conn:
                    outbox.record(conn, EventType.TOKEN_ISSUED, NOW, client_id=f"c{w}", n=i)
                    # Keep the transaction open a little after its event: a later writer must not
                    # commit a higher id meanwhile.
                    time.sleep(0.001 * (i % 3))
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            with db.read() as conn:
                ids = list(conn.execute(sa.select(events.c.id).order_by(events.c.id)).scalars())
            if ids != list(range(1, len(ids) + 1)):
                observed_gaps.append(ids)
                return

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    watcher.join(timeout=70)
    assert not errors
    assert not observed_gaps
    report = _verify(db)
    assert report.ok and report.events == writers * per_writer


def test_a_rolled_back_event_leaves_no_gap(db: Database) -> None:
    _write(db, 1)
    with pytest.raises(RuntimeError), db.write() as conn:
        outbox.record(conn, EventType.USER_CREATED, NOW, user_id="x")
        raise RuntimeError("abort")
    _write(db, 1)
    with db.read() as conn:
        assert list(conn.execute(sa.select(events.c.id).order_by(events.c.id)).scalars()) == [1, 2]
    assert _verify(db).ok


def test_a_missing_head_row_is_rebuilt_from_the_tail(db: Database) -> None:
    _write(db, 3)
    with db.write() as conn:
        conn.execute(event_chain_head.delete())
    _write(db, 2)
    report = _verify(db)
    assert report.ok and report.last_id == 5


def test_deferred_events_are_appended_in_order_at_the_end_of_the_block(db: Database) -> None:
    _write(db, 2)
    with db.write() as conn:
        with chain.deferred(conn):
            ids = [
                outbox.record(conn, EventType.TOKEN_REFRESHED, NOW + 10 + i, grant_id=f"g{i}")
                for i in range(4)
            ]
            # Nothing written, and the head not taken, until the block ends.
            assert ids == [0, 0, 0, 0]
            assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 2
        assert chain.read_head(conn)[0] == 6
    with db.read() as conn:
        rows = conn.execute(sa.select(events).order_by(events.c.id)).all()
    assert [(r.id, r.data.get("grant_id")) for r in rows[2:]] == [
        (3, "g0"),
        (4, "g1"),
        (5, "g2"),
        (6, "g3"),
    ]
    report = _verify(db)
    assert report.ok and report.events == 6

    # A block that fails writes none of its events; the chain goes on from where it was.
    with pytest.raises(RuntimeError), db.write() as conn, chain.deferred(conn):
        outbox.record(conn, EventType.TOKEN_REFRESHED, NOW + 20, grant_id="lost")
        raise RuntimeError("the unit of work fails")
    _write(db, 1)
    report = _verify(db)
    assert report.ok and report.events == 7 and report.last_id == 7
