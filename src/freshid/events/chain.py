"""The audit chain: every event row carries the SHA-256 of its predecessor and of itself.

``hash = SHA-256(canonical JSON of {id, type, occurred_at, user_id, session_id, client_id, data,
prev_hash})``, hex-encoded, with ``prev_hash`` of the first event being 64 zeros. Canonical JSON
here is the RFC 8785 (JCS) form for the values events carry: object members sorted by name, no
insignificant whitespace, UTF-8, integers and strings only in practice (floats would follow
Python's shortest round-trip ``repr``, which matches JCS for the values we emit). Editing a row
changes its hash; deleting, inserting or reordering rows breaks the next row's ``prev_hash``.

**One linear chain, and id order is commit order.** Event writers serialise on the one-row
``event_chain_head`` table: on PostgreSQL they take ``SELECT ... FOR UPDATE`` on it *before* the
next id is chosen (``last_id + 1``), and hold the lock until their transaction ends; SQLite
writers are serialised already (``BEGIN IMMEDIATE``, :mod:`freshid.storage.database`). So a
transaction that writes events gets its ids only after every earlier event writer has committed
or rolled back, which gives two properties the rest of the feature relies on:

- the chain has no forks: each event's ``prev_hash`` is the hash of the event committed just
  before it;
- ids are assigned, and become visible, in commit order, with no gaps: once a reader sees event
  ``n``, every event ``< n`` is visible too. A ``WHERE id > :cursor`` keyset read (the Events API,
  the webhook dispatcher) therefore never skips a row that commits later with a lower id — the
  hazard of a plain sequence under PostgreSQL READ COMMITTED, where ids are taken at insert time
  but become visible at commit time, in any order.

The price is that event-writing transactions on PostgreSQL commit one at a time from their first
event onwards. Each takes the lock late (at its first event) and holds it for the rest of the
transaction only. A transaction running many units of work (:mod:`freshid.storage.group_commit`)
takes it later still: inside :func:`deferred`, events are kept in order and appended together at
its end, with one lock and one batch of inserts, so the units' other statements run while other
writers hold the head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from freshid.storage.prepared import Prepared
from freshid.storage.tables import events
from freshid.storage.tables_events import event_chain_head

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event."""

HEAD_ID = 1

# Built once: the outbox runs these on every event, and SQLAlchemy statement construction is a
# large part of a write's CPU (docs/benchmarks.md).
_LOCK_HEAD = (
    sa.select(event_chain_head.c.last_id, event_chain_head.c.last_hash)
    .where(event_chain_head.c.id == HEAD_ID)
    .with_for_update()  # SQLite ignores it: its writers are already serialised
)
_READ_HEAD = sa.select(event_chain_head.c.last_id, event_chain_head.c.last_hash).where(
    event_chain_head.c.id == HEAD_ID
)
_LOCK_HEAD_PREPARED = Prepared(_LOCK_HEAD)
_EVENT_VALUES: dict[str, Any] = {
    c.name: sa.bindparam(c.name) for c in events.columns
}  # the chain's included
_INSERT_EVENT = Prepared(events.insert().values(_EVENT_VALUES))
_MOVE_HEAD_UPDATE = (
    event_chain_head.update()
    .where(event_chain_head.c.id == HEAD_ID)
    .values(last_id=sa.bindparam("id"), last_hash=sa.bindparam("hash"))
)
_MOVE_HEAD = Prepared(_MOVE_HEAD_UPDATE)
# PostgreSQL: the insert and the head's move in one statement, so one network round trip fewer
# while the head is locked (every other event writer waits for that lock).
_INSERT_AND_MOVE = Prepared(
    events.insert().values(_EVENT_VALUES).add_cte(_MOVE_HEAD_UPDATE.cte("moved"))
)
_TAIL = sa.select(events.c.id, events.c.hash).order_by(events.c.id.desc()).limit(1)


# ensure_ascii=True takes the C encoder's fastest path; its output equals the UTF-8 form whenever
# it contains no "\u" escape, which is the case for nearly every event (ids, types, methods).
_ASCII = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
_UTF8 = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> bytes:
    """RFC 8785-style canonical JSON: sorted members, no whitespace, UTF-8, no NaN/Infinity."""
    text = _ASCII.encode(value)
    if "\\u" in text:
        text = _UTF8.encode(value)
    return text.encode("utf-8")


def fields_hash(
    id: int,
    type: str,
    occurred_at: int,
    user_id: str | None,
    session_id: str | None,
    client_id: str | None,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The chain hash of one event (positional, for the verifier's loop)."""
    return hashlib.sha256(
        canonical_json(
            {
                "id": id,
                "type": type,
                "occurred_at": occurred_at,
                "user_id": user_id,
                "session_id": session_id,
                "client_id": client_id,
                "data": data,
                "prev_hash": prev_hash,
            }
        )
    ).hexdigest()


def event_hash(
    *,
    id: int,
    type: str,
    occurred_at: int,
    user_id: str | None,
    session_id: str | None,
    client_id: str | None,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    return fields_hash(id, type, occurred_at, user_id, session_id, client_id, data, prev_hash)


def row_hash(row: Mapping[str, Any]) -> str:
    """The hash an ``events`` row should carry, recomputed from its stored columns."""
    return event_hash(
        id=row["id"],
        type=row["type"],
        occurred_at=row["occurred_at"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        client_id=row["client_id"],
        data=row["data"],
        prev_hash=row["prev_hash"],
    )


def _ensure_head(conn: Connection) -> None:
    """Create the head row if it is missing (a fresh or truncated table), from the chain's tail."""
    tail = conn.execute(_TAIL).first()
    last_id, last_hash = (int(tail.id), str(tail.hash)) if tail is not None else (0, GENESIS)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    # Two first writers may race here: one inserts, the other's insert waits for it and does
    # nothing; both then lock the same row.
    conn.execute(
        insert(event_chain_head)
        .values(id=HEAD_ID, last_id=last_id, last_hash=last_hash)
        .on_conflict_do_nothing()
    )


def lock_head(conn: Connection) -> tuple[int, str]:
    """Lock the chain head for the rest of this transaction; returns ``(last_id, last_hash)``."""
    row = _LOCK_HEAD_PREPARED.first(conn)
    if row is None:
        _ensure_head(conn)
        row = _LOCK_HEAD_PREPARED.first(conn)
        assert row is not None  # inserted just now, or by the writer we waited for
    return int(row["last_id"]), str(row["last_hash"])


def read_head(conn: Connection) -> tuple[int, str]:
    """The last committed event id and hash, without locking; ``(0, GENESIS)`` when empty.

    Every event with an id at most ``last_id`` is committed and visible to a later statement.
    """
    row = conn.execute(_READ_HEAD).first()
    if row is None:
        tail = conn.execute(_TAIL).first()
        return (int(tail.id), str(tail.hash)) if tail is not None else (0, GENESIS)
    return int(row.last_id), str(row.last_hash)


_DEFERRED = "freshid.chain.deferred"
"""``Connection.info`` key of the events :func:`deferred` holds back."""

_Fields = tuple[str, int, str | None, str | None, str | None, Mapping[str, Any]]


Held = list[_Fields]
"""Events held back on a connection (see :func:`hold`), in the order they were appended."""


def hold(conn: Connection) -> Held:
    """From now on, events appended on ``conn`` are held back, not written; their
    :func:`append` returns 0 (their ids are not known yet). The caller must end it with
    :func:`flush` or :func:`drop`. Truncating the returned list forgets the newest of them."""
    held: Held = []
    conn.info[_DEFERRED] = held
    return held


def flush(conn: Connection) -> int:
    """Write the held events, in order, and stop holding: the head is locked now, not at the
    first of them. Returns the last id (0 if none were held)."""
    return _append_all(conn, conn.info.pop(_DEFERRED))


def drop(conn: Connection) -> None:
    """Forget the held events (their transaction is rolling back) and stop holding."""
    conn.info.pop(_DEFERRED, None)


@contextmanager
def deferred(conn: Connection) -> Iterator[None]:
    """Events appended on ``conn`` inside the block are written when it ends without an error
    (:func:`hold`, then :func:`flush`)."""
    hold(conn)
    try:
        yield
    except BaseException:
        drop(conn)
        raise
    flush(conn)


def append(
    conn: Connection,
    type_: str,
    occurred_at: int,
    user_id: str | None,
    session_id: str | None,
    client_id: str | None,
    data: Mapping[str, Any],
) -> int:
    """Insert one event at the end of the chain, in the caller's transaction; returns its id
    (0 inside :func:`deferred`, which writes it later)."""
    fields = (type_, occurred_at, user_id, session_id, client_id, data)
    held = conn.info.get(_DEFERRED)
    if held is not None:
        held.append(fields)
        return 0
    return _append_all(conn, [fields])


def _append_all(conn: Connection, appended: Held) -> int:
    """Chain and insert ``appended`` after the locked head; returns the last id (0 if none)."""
    if not appended:
        return 0
    last_id, prev_hash = lock_head(conn)
    rows = []
    for type_, occurred_at, user_id, session_id, client_id, data in appended:
        # The JSON column stores what json.dumps makes of the data (tuples become lists); hash
        # exactly what a reader will load back.
        text = canonical_json(dict(data)).decode("utf-8")
        last_id += 1
        digest = fields_hash(
            last_id, type_, occurred_at, user_id, session_id, client_id, json.loads(text), prev_hash
        )
        rows.append(
            {
                "id": last_id,
                "type": type_,
                "occurred_at": occurred_at,
                "user_id": user_id,
                "session_id": session_id,
                "client_id": client_id,
                "data": text,
                "prev_hash": prev_hash,
                "hash": digest,
            }
        )
        prev_hash = digest
    last = rows.pop()
    if rows:
        _INSERT_EVENT.execute_many(conn, rows)
    if conn.dialect.name == "postgresql":
        _INSERT_AND_MOVE.execute(conn, **last)
    else:
        _INSERT_EVENT.execute(conn, **last)
        _MOVE_HEAD.execute(conn, id=last_id, hash=last["hash"])
    return last_id
