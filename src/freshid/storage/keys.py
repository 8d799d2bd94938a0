"""Signing keys at rest.

Private keys are stored as unencrypted PKCS#8 PEM in the database; protect the database (and its
backups) accordingly. Encryption at rest with an operator-supplied key is future work.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.storage.tables import signing_keys
from freshid.tokens import keys as keymod
from freshid.tokens.keys import SigningKey


def load_all(conn: Connection) -> list[SigningKey]:
    rows = conn.execute(signing_keys.select().order_by(signing_keys.c.created_at))
    return [keymod.load(r.kid, r.alg, r.private_pem, r.created_at, r.retired_at) for r in rows]


def insert(conn: Connection, key: SigningKey) -> None:
    conn.execute(
        signing_keys.insert().values(
            kid=key.kid,
            alg=key.alg,
            private_pem=key.private_pem(),
            created_at=key.created_at,
            retired_at=key.retired_at,
        )
    )


def rotate(conn: Connection, now: int, alg: str = "ES256") -> SigningKey:
    """Retire every active key and add a new one; retired keys stay published for a while."""
    new = keymod.generate(now, alg)
    conn.execute(
        signing_keys.update().where(signing_keys.c.retired_at.is_(None)).values(retired_at=now)
    )
    insert(conn, new)
    outbox.record(conn, EventType.SIGNING_KEY_ROTATED, now, kid=new.kid)
    return new


def ensure_active(conn: Connection, now: int) -> None:
    """First start: create a key if none is active."""
    active = conn.execute(
        sa.select(sa.func.count())
        .select_from(signing_keys)
        .where(signing_keys.c.retired_at.is_(None))
    ).scalar_one()
    if not active:
        rotate(conn, now)
