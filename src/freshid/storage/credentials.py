"""A user's second and passwordless credentials: TOTP, passkeys and recovery codes.

Every "use once" rule is a conditional UPDATE, so parallel submissions of the same TOTP step,
passkey assertion or recovery code have exactly one winner on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.storage.prepared import Prepared
from freshid.storage.tables import credentials
from freshid.tokens.secrets import new_token

TOTP = "totp"
PASSKEY = "passkey"
RECOVERY_CODE = "recovery_code"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Credential:
    id: str
    user_id: str
    type: str
    name: str
    secret: str | None
    credential_id: str | None
    public_key: str | None
    sign_count: int
    backup_eligible: bool
    last_used_step: int | None
    created_at: int
    confirmed_at: int | None
    last_used_at: int | None


def _row(m: Mapping[Any, Any]) -> Credential:
    return Credential(
        m["id"],
        m["user_id"],
        m["type"],
        m["name"],
        m["secret"],
        m["credential_id"],
        m["public_key"],
        int(m["sign_count"]),
        bool(m["backup_eligible"]),
        m["last_used_step"],
        m["created_at"],
        m["confirmed_at"],
        m["last_used_at"],
    )


_FOR_USER = sa.select(*(credentials.c[f.name] for f in fields(Credential))).where(
    credentials.c.user_id == sa.bindparam("user_id")
)
_ORDER = (credentials.c.created_at, credentials.c.id)
# Read on every authorization request, to know what the user could re-prove it with.
_CONFIRMED_FOR_USER = Prepared(
    _FOR_USER.where(credentials.c.confirmed_at.is_not(None)).order_by(*_ORDER)
)
_ALL_FOR_USER = Prepared(_FOR_USER.order_by(*_ORDER))


def for_user(conn: Connection, user_id: str, *, confirmed_only: bool = True) -> list[Credential]:
    query = _CONFIRMED_FOR_USER if confirmed_only else _ALL_FOR_USER
    return [_row(m) for m in query.all(conn, user_id=user_id)]


def by_id(conn: Connection, user_id: str, credential_id: str) -> Credential | None:
    row = conn.execute(
        credentials.select().where(
            credentials.c.id == credential_id, credentials.c.user_id == user_id
        )
    ).first()
    return _row(row._mapping) if row else None


def _insert(conn: Connection, **values: Any) -> str:
    cid = new_token(16)
    conn.execute(credentials.insert().values(id=cid, **values))
    return cid


def add_totp(conn: Connection, user_id: str, secret: str, now: int) -> str:
    """An unconfirmed TOTP enrolment; it counts only after :func:`confirm_totp`."""
    return _insert(
        conn, user_id=user_id, type=TOTP, name="Authenticator app", secret=secret, created_at=now
    )


def confirm_totp(
    conn: Connection, user_id: str, cred_id: str, name: str, step: int, now: int
) -> bool:
    result = conn.execute(
        credentials.update()
        .where(
            credentials.c.id == cred_id,
            credentials.c.user_id == user_id,
            credentials.c.type == TOTP,
            credentials.c.confirmed_at.is_(None),
        )
        .values(confirmed_at=now, name=name, last_used_step=step, last_used_at=now)
    )
    return result.rowcount == 1


def use_totp_step(conn: Connection, cred_id: str, step: int, now: int) -> bool:
    """Record that ``step`` was used; False when it (or a later one) already was (RFC 6238 §5.2)."""
    result = conn.execute(
        credentials.update()
        .where(
            credentials.c.id == cred_id,
            sa.or_(credentials.c.last_used_step.is_(None), credentials.c.last_used_step < step),
        )
        .values(last_used_step=step, last_used_at=now)
    )
    return result.rowcount == 1


def add_passkey(
    conn: Connection,
    user_id: str,
    name: str,
    credential_id: bytes,
    public_key: bytes,
    sign_count: int,
    backup_eligible: bool,
    transports: Sequence[str],
    now: int,
) -> str:
    return _insert(
        conn,
        user_id=user_id,
        type=PASSKEY,
        name=name,
        credential_id=b64url(credential_id),
        public_key=b64url(public_key),
        sign_count=sign_count,
        backup_eligible=backup_eligible,
        transports=list(transports),
        created_at=now,
        confirmed_at=now,
    )


def passkey_by_credential_id(conn: Connection, credential_id: bytes) -> Credential | None:
    row = conn.execute(
        credentials.select().where(
            credentials.c.type == PASSKEY, credentials.c.credential_id == b64url(credential_id)
        )
    ).first()
    return _row(row._mapping) if row else None


def record_passkey_use(
    conn: Connection, cred_id: str, old_count: int, new_count: int, now: int
) -> bool:
    """Store the new signature counter, only if nobody else moved it meanwhile."""
    result = conn.execute(
        credentials.update()
        .where(credentials.c.id == cred_id, credentials.c.sign_count == old_count)
        .values(sign_count=new_count, last_used_at=now)
    )
    return result.rowcount == 1


def replace_recovery_codes(
    conn: Connection, user_id: str, digests: Sequence[str], now: int
) -> None:
    conn.execute(
        credentials.delete().where(
            credentials.c.user_id == user_id, credentials.c.type == RECOVERY_CODE
        )
    )
    for digest in digests:
        _insert(
            conn,
            user_id=user_id,
            type=RECOVERY_CODE,
            name="Recovery code",
            code_digest=digest,
            created_at=now,
            confirmed_at=now,
        )


def unused_recovery_digests(conn: Connection, user_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(credentials.c.code_digest).where(
            credentials.c.user_id == user_id,
            credentials.c.type == RECOVERY_CODE,
            credentials.c.last_used_at.is_(None),
        )
    )
    return [r.code_digest for r in rows]


def use_recovery_code(conn: Connection, user_id: str, digest: str, now: int) -> bool:
    result = conn.execute(
        credentials.update()
        .where(
            credentials.c.user_id == user_id,
            credentials.c.type == RECOVERY_CODE,
            credentials.c.code_digest == digest,
            credentials.c.last_used_at.is_(None),
        )
        .values(last_used_at=now)
    )
    return result.rowcount == 1


def remove(conn: Connection, user_id: str, cred_id: str) -> Credential | None:
    found = by_id(conn, user_id, cred_id)
    if found is None:
        return None
    if found.type == RECOVERY_CODE:
        conn.execute(
            credentials.delete().where(
                credentials.c.user_id == user_id, credentials.c.type == RECOVERY_CODE
            )
        )
    else:
        conn.execute(credentials.delete().where(credentials.c.id == cred_id))
    return found
