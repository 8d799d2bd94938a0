"""Emailed sign-in codes at rest: one live code per interaction, attempts reserved atomically."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.methods.email_code import IssuedCode, StoredEmailCode
from freshid.storage.tables import email_codes


def issue(
    conn: Connection,
    interaction_id: str,
    user_id: str | None,
    email: str,
    code: IssuedCode,
    now: int,
) -> None:
    """Store a new code; any earlier code of the same interaction stops working."""
    conn.execute(
        email_codes.update()
        .where(
            email_codes.c.interaction_id == interaction_id, email_codes.c.superseded_at.is_(None)
        )
        .values(superseded_at=now)
    )
    conn.execute(
        email_codes.insert().values(
            id=code.challenge_id,
            interaction_id=interaction_id,
            user_id=user_id,
            email=email,
            code_digest=code.code_digest,
            link_digest=code.link_digest,
            created_at=now,
            expires_at=code.expires_at,
        )
    )


def _stored(m: sa.RowMapping) -> StoredEmailCode:
    return StoredEmailCode(
        m["id"],
        m["code_digest"],
        m["link_digest"],
        m["expires_at"],
        m["attempts"],
        m["used_at"],
        m["superseded_at"] is not None,
    )


def current(
    conn: Connection, interaction_id: str
) -> tuple[StoredEmailCode, str | None, str] | None:
    """The interaction's newest code, with its user id and address."""
    row = conn.execute(
        email_codes.select()
        .where(email_codes.c.interaction_id == interaction_id)
        .order_by(email_codes.c.created_at.desc(), email_codes.c.superseded_at.is_(None).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    m = row._mapping
    return _stored(m), m["user_id"], m["email"]


def superseded(conn: Connection, interaction_id: str) -> list[StoredEmailCode]:
    """The interaction's replaced codes (to tell "a newer code was sent" from a wrong one)."""
    rows = conn.execute(
        email_codes.select().where(
            email_codes.c.interaction_id == interaction_id,
            email_codes.c.superseded_at.is_not(None),
        )
    )
    return [_stored(r._mapping) for r in rows]


def reserve_attempt(conn: Connection, code_id: str) -> StoredEmailCode | None:
    """Count one attempt before checking it, so parallel guesses cannot exceed the cap."""
    conn.execute(
        email_codes.update()
        .where(email_codes.c.id == code_id)
        .values(attempts=email_codes.c.attempts + 1)
    )
    row = conn.execute(email_codes.select().where(email_codes.c.id == code_id)).first()
    return _stored(row._mapping) if row else None


def by_link(
    conn: Connection, link_digest: str
) -> tuple[StoredEmailCode, str, str | None, str] | None:
    """The code a link belongs to: record, interaction id, user id, address."""
    row = conn.execute(email_codes.select().where(email_codes.c.link_digest == link_digest)).first()
    if row is None:
        return None
    m = row._mapping
    return _stored(m), m["interaction_id"], m["user_id"], m["email"]


def mark_used(conn: Connection, code_id: str, now: int) -> bool:
    result = conn.execute(
        email_codes.update()
        .where(
            email_codes.c.id == code_id,
            email_codes.c.used_at.is_(None),
            email_codes.c.superseded_at.is_(None),
        )
        .values(used_at=now)
    )
    return result.rowcount == 1
