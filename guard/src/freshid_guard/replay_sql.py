"""A :class:`~freshid_guard.decision.ReplayStore` shared by several app processes, on SQLAlchemy
Core (the ``sql`` extra): SQLite, PostgreSQL, or anything with a primary-key constraint.

A bound proof is consumed by *inserting* ``(jti, action)``; the primary key makes the second insert
fail in every process at once, with no read-then-write race. Expired rows (past the token's
``exp``) are deleted now and then; an expired token is refused by verification anyway.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

DEFAULT_TABLE = "freshid_guard_used_proofs"


def used_proofs_table(metadata: sa.MetaData, name: str = DEFAULT_TABLE) -> sa.Table:
    """The table definition, for apps that manage their schema with Alembic."""
    return sa.Table(
        name,
        metadata,
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("action", sa.String(128), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    )


class SQLReplayStore:
    """Bound proofs used, in a SQL table; ``create=True`` creates the table if it is missing."""

    blocking = True

    def __init__(
        self,
        engine: sa.Engine,
        *,
        table_name: str = DEFAULT_TABLE,
        create: bool = True,
        purge_every: int = 100,
    ) -> None:
        self.engine = engine
        self.table = used_proofs_table(sa.MetaData(), table_name)
        self._purge_every = max(1, purge_every)
        self._consumed = 0
        if create:
            self.table.create(engine, checkfirst=True)

    def consume(self, jti: str, action: str, expires_at: int, now: int) -> bool:
        self._consumed += 1
        try:
            with self.engine.begin() as conn:
                if self._consumed % self._purge_every == 0:
                    conn.execute(sa.delete(self.table).where(self.table.c.expires_at <= now))
                conn.execute(
                    sa.insert(self.table).values(jti=jti, action=action, expires_at=expires_at)
                )
        except IntegrityError:
            return False
        return True
