"""Single-use server-side challenges (WebAuthn §13.4.3: the relying party must remember the
challenge it issued and accept it once). Kept in the database so any node can finish a ceremony."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from freshid.storage.credentials import b64url, unb64url
from freshid.storage.tables import challenges
from freshid.tokens.secrets import new_token


def issue(
    conn: Connection, purpose: str, subject: str, challenge: bytes, now: int, ttl: int
) -> str:
    cid = new_token(16)
    conn.execute(
        challenges.insert().values(
            id=cid,
            purpose=purpose,
            subject=subject,
            challenge=b64url(challenge),
            expires_at=now + ttl,
        )
    )
    return cid


def consume(conn: Connection, cid: str, purpose: str, subject: str, now: int) -> bytes | None:
    """The challenge, if it is this subject's, unexpired and unused; marks it used."""
    row = conn.execute(
        challenges.select().where(
            challenges.c.id == cid, challenges.c.purpose == purpose, challenges.c.subject == subject
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    result = conn.execute(
        challenges.update()
        .where(challenges.c.id == cid, challenges.c.used_at.is_(None))
        .values(used_at=now)
    )
    return unb64url(row.challenge) if result.rowcount == 1 else None
