"""Users: accounts with an email address and, optionally, a password hash."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.storage.prepared import Prepared
from freshid.storage.tables import users
from freshid.tokens.secrets import new_token


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str | None
    disabled: bool
    created_at: int


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _row(row: sa.Row[tuple[object, ...]] | None) -> User | None:
    if row is None:
        return None
    return _user(row._mapping)


def _user(m: Mapping[Any, Any]) -> User:
    return User(m["id"], m["email"], m["password_hash"], bool(m["disabled"]), m["created_at"])


def create(conn: Connection, email: str, password_hash: str | None, now: int) -> User:
    user = User(new_token(16), normalise_email(email), password_hash, False, now)
    conn.execute(
        users.insert().values(
            id=user.id,
            email=user.email,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
        )
    )
    outbox.record(conn, EventType.USER_CREATED, now, user_id=user.id)
    return user


def by_email(conn: Connection, email: str) -> User | None:
    return _row(conn.execute(users.select().where(users.c.email == normalise_email(email))).first())


# Read on every authorization request (:mod:`freshid.storage.prepared`).
_BY_ID = Prepared(
    sa.select(
        users.c.id, users.c.email, users.c.password_hash, users.c.disabled, users.c.created_at
    ).where(users.c.id == sa.bindparam("id"))
)


def by_id(conn: Connection, user_id: str) -> User | None:
    m = _BY_ID.first(conn, id=user_id)
    return None if m is None else _user(m)


def all_users(conn: Connection) -> list[User]:
    rows = conn.execute(users.select().order_by(users.c.created_at, users.c.email))
    return [u for u in (_row(r) for r in rows) if u is not None]


def set_password_hash(conn: Connection, user_id: str, password_hash: str) -> None:
    conn.execute(users.update().where(users.c.id == user_id).values(password_hash=password_hash))


def disable(conn: Connection, user_id: str, now: int) -> bool:
    result = conn.execute(
        users.update()
        .where(users.c.id == user_id, users.c.disabled.is_(False))
        .values(disabled=True)
    )
    if result.rowcount:
        outbox.record(conn, EventType.USER_DISABLED, now, user_id=user_id)
    return bool(result.rowcount)
