"""Grants and the credentials issued under them: codes, refresh tokens, access-token ids.

A grant is what one sign-in gave one client. It freezes the proof behind it (``auth_time``,
``acr``, ``amr``, ``sid``): every token issued under it, including after any number of refreshes,
states that original proof (OIDC Core §12.2). Revoking the grant kills its whole family.

Exactly-once transitions (redeeming a code, rotating a refresh token) are a conditional UPDATE
whose row count decides the single winner on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from freshid_guard.policy import ACTION_DETAIL_TYPE
from sqlalchemy.engine import Connection

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.storage import prepared
from freshid.storage.prepared import Prepared
from freshid.storage.tables import (
    access_tokens,
    authorization_codes,
    grants,
    refresh_tokens,
    sessions,
    users,
)
from freshid.tokens.secrets import digest, new_token


@dataclass(frozen=True)
class Grant:
    id: str
    client_id: str
    user_id: str
    session_id: str
    scope: str
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    offline: bool
    created_at: int
    expires_at: int
    revoked_at: int | None
    action: str | None = None

    def authorization_details(self) -> list[dict[str, str]] | None:
        """RFC 9396 §7: what the grant was for, as the token response and tokens state it."""
        if self.action is None:
            return None
        return [{"type": ACTION_DETAIL_TYPE, "action": self.action}]


@dataclass(frozen=True)
class Holder:
    """The user and session behind a grant, read in the same query as the grant itself."""

    email: str
    user_disabled: bool
    session_revoked_at: int | None
    session_expires_at: int
    session_last_seen_at: int

    def session_alive(self, now: int, idle_ttl: int) -> bool:
        return (
            self.session_revoked_at is None
            and now < self.session_expires_at
            and now - self.session_last_seen_at < idle_ttl
        )


_HOLDER_COLUMNS = (
    users.c.email.label("holder_email"),
    users.c.disabled.label("holder_disabled"),
    sessions.c.revoked_at.label("holder_session_revoked_at"),
    sessions.c.expires_at.label("holder_session_expires_at"),
    sessions.c.last_seen_at.label("holder_session_last_seen_at"),
)


def _holder(m: Mapping[Any, Any]) -> Holder:
    return Holder(
        m["holder_email"],
        bool(m["holder_disabled"]),
        m["holder_session_revoked_at"],
        m["holder_session_expires_at"],
        m["holder_session_last_seen_at"],
    )


def _with_holder(select: sa.Select[Any]) -> sa.Select[Any]:
    return select.join(users, users.c.id == grants.c.user_id).join(
        sessions, sessions.c.id == grants.c.session_id
    )


@dataclass(frozen=True)
class CodeRecord:
    grant: Grant
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    expires_at: int
    used_at: int | None
    holder: Holder


def _grant(m: Mapping[Any, Any]) -> Grant:
    return Grant(
        m["id"],
        m["client_id"],
        m["user_id"],
        m["session_id"],
        m["scope"],
        m["auth_time"],
        m["acr"],
        tuple(prepared.json_value(m["amr"])),
        bool(m["offline"]),
        m["created_at"],
        m["expires_at"],
        m["revoked_at"],
        m["action"],
    )


def _spend(table: sa.Table, digest_column: sa.Column[Any]) -> Prepared:
    """Mark a single-use credential used: the row count decides the one winner of a race."""
    return Prepared(
        table.update()
        .where(digest_column == sa.bindparam("digest"), table.c.used_at.is_(None))
        .values(used_at=sa.bindparam("now"))
    )


# The token endpoint's statements, compiled once (:mod:`freshid.storage.prepared`).
_GRANT_COLUMNS = tuple(c for c in grants.columns if c.name != "revoked_reason")
# A new grant is not revoked: every other column is set.
_INSERT_GRANT = prepared.insert(
    grants, tuple(c.name for c in _GRANT_COLUMNS if c.name != "revoked_at")
)
_INSERT_CODE = prepared.insert(
    authorization_codes,
    ("code_digest", "grant_id", "redirect_uri", "nonce", "code_challenge", "expires_at"),
)
_FIND_CODE = Prepared(
    _with_holder(
        sa.select(
            authorization_codes.c.redirect_uri,
            authorization_codes.c.nonce,
            authorization_codes.c.code_challenge,
            authorization_codes.c.expires_at.label("code_expires_at"),
            authorization_codes.c.used_at,
            *_GRANT_COLUMNS,
            *_HOLDER_COLUMNS,
        ).join(grants, grants.c.id == authorization_codes.c.grant_id)
    ).where(authorization_codes.c.code_digest == sa.bindparam("digest"))
)
_REDEEM_CODE = _spend(authorization_codes, authorization_codes.c.code_digest)
_INSERT_REFRESH = prepared.insert(refresh_tokens, ("token_digest", "grant_id", "created_at"))
_FIND_REFRESH = Prepared(
    _with_holder(
        sa.select(refresh_tokens.c.used_at, *_GRANT_COLUMNS, *_HOLDER_COLUMNS).join(
            grants, grants.c.id == refresh_tokens.c.grant_id
        )
    ).where(refresh_tokens.c.token_digest == sa.bindparam("digest"))
)
_USE_REFRESH = _spend(refresh_tokens, refresh_tokens.c.token_digest)
_INSERT_ACCESS = prepared.insert(access_tokens, ("jti", "grant_id", "expires_at"))
# PostgreSQL: a refresh grant's three writes as one statement (one network round trip). The
# successor and the access token exist only if this statement retired the presented token.
_ROTATE_REFRESH = Prepared(
    sa.text(
        """
        WITH used AS (
            UPDATE refresh_tokens SET used_at = :now
            WHERE token_digest = :digest AND used_at IS NULL
            RETURNING grant_id
        ), issued AS (
            INSERT INTO refresh_tokens (token_digest, grant_id, created_at)
            SELECT :new_digest, grant_id, :now FROM used
        ), recorded AS (
            INSERT INTO access_tokens (jti, grant_id, expires_at)
            SELECT :jti, grant_id, :expires_at FROM used
        )
        SELECT count(*) AS rotated FROM used
        """
    ).columns(rotated=sa.Integer)
)


def create_with_code(
    conn: Connection,
    *,
    client_id: str,
    user_id: str,
    session_id: str,
    scope: str,
    auth_time: int,
    acr: str,
    amr: tuple[str, ...],
    offline: bool,
    action: str | None = None,
    redirect_uri: str,
    nonce: str | None,
    code_challenge: str | None,
    now: int,
    code_ttl: int,
    grant_ttl: int,
) -> str:
    """A new grant and its authorization code; returns the code (stored only as a digest)."""
    grant_id, code = new_token(16), new_token(32)
    _INSERT_GRANT.execute(
        conn,
        id=grant_id,
        client_id=client_id,
        user_id=user_id,
        session_id=session_id,
        scope=scope,
        auth_time=auth_time,
        acr=acr,
        amr=prepared.json_param(list(amr)),
        offline=offline,
        action=action,
        created_at=now,
        expires_at=now + grant_ttl,
    )
    _INSERT_CODE.execute(
        conn,
        code_digest=digest(code),
        grant_id=grant_id,
        redirect_uri=redirect_uri,
        nonce=nonce,
        code_challenge=code_challenge,
        expires_at=now + code_ttl,
    )
    return code


def find_code(conn: Connection, code: str) -> CodeRecord | None:
    m = _FIND_CODE.first(conn, digest=digest(code))
    if m is None:
        return None
    return CodeRecord(
        _grant(m),
        m["redirect_uri"],
        m["nonce"],
        m["code_challenge"],
        m["code_expires_at"],
        m["used_at"],
        _holder(m),
    )


def redeem_code(conn: Connection, code: str, now: int) -> bool:
    """Mark the code used; False when someone else already did (the caller then revokes)."""
    return _REDEEM_CODE.execute(conn, digest=digest(code), now=now) == 1


def revoke_grant(conn: Connection, grant_id: str, reason: str, now: int) -> bool:
    result = conn.execute(
        grants.update()
        .where(grants.c.id == grant_id, grants.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    conn.execute(
        access_tokens.update()
        .where(access_tokens.c.grant_id == grant_id, access_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1


def issue_refresh_token(conn: Connection, grant_id: str, now: int) -> str:
    token = new_token(32)
    _INSERT_REFRESH.execute(conn, token_digest=digest(token), grant_id=grant_id, created_at=now)
    return token


@dataclass(frozen=True)
class RefreshRecord:
    grant: Grant
    used_at: int | None
    holder: Holder


def find_refresh_token(conn: Connection, token: str) -> RefreshRecord | None:
    m = _FIND_REFRESH.first(conn, digest=digest(token))
    if m is None:
        return None
    return RefreshRecord(_grant(m), m["used_at"], _holder(m))


def use_refresh_token(conn: Connection, token: str, now: int) -> bool:
    return _USE_REFRESH.execute(conn, digest=digest(token), now=now) == 1


def rotate_refresh_token(
    conn: Connection, spent: str, grant_id: str, jti: str, access_expires_at: int, now: int
) -> str | None:
    """Retire ``spent``, issue its successor and record the new access token's id, all or
    nothing; returns the successor, or None when ``spent`` was already used (by a racing
    request or a thief: the caller revokes the family)."""
    token = new_token(32)
    if conn.dialect.name == "postgresql":
        row = _ROTATE_REFRESH.first(
            conn,
            digest=digest(spent),
            new_digest=digest(token),
            jti=jti,
            expires_at=access_expires_at,
            now=now,
        )
        return token if row is not None and row["rotated"] == 1 else None
    if not use_refresh_token(conn, spent, now):
        return None
    _INSERT_REFRESH.execute(conn, token_digest=digest(token), grant_id=grant_id, created_at=now)
    record_access_token(conn, jti, grant_id, access_expires_at)
    return token


def record_access_token(conn: Connection, jti: str, grant_id: str, expires_at: int) -> None:
    _INSERT_ACCESS.execute(conn, jti=jti, grant_id=grant_id, expires_at=expires_at)


def access_token_active(conn: Connection, jti: str, now: int) -> Grant | None:
    """The grant behind a still-valid access token id, or None when revoked or unknown."""
    row = conn.execute(
        sa.select(grants)
        .join(access_tokens, access_tokens.c.grant_id == grants.c.id)
        .where(
            access_tokens.c.jti == jti,
            access_tokens.c.revoked_at.is_(None),
            access_tokens.c.expires_at > now,
            grants.c.revoked_at.is_(None),
        )
    ).first()
    return _grant(row._mapping) if row is not None else None


def revoke_access_token(conn: Connection, jti: str, now: int) -> str | None:
    """Revoke one access token; returns its client_id when it existed."""
    row = conn.execute(
        sa.select(grants.c.client_id)
        .join(access_tokens, access_tokens.c.grant_id == grants.c.id)
        .where(access_tokens.c.jti == jti)
    ).first()
    if row is None:
        return None
    conn.execute(access_tokens.update().where(access_tokens.c.jti == jti).values(revoked_at=now))
    return str(row.client_id)


def record_reuse(conn: Connection, grant: Grant, kind: EventType, now: int) -> None:
    revoke_grant(conn, grant.id, kind.value, now)
    outbox.record(
        conn,
        kind,
        now,
        user_id=grant.user_id,
        session_id=grant.session_id,
        client_id=grant.client_id,
        grant_id=grant.id,
    )


def revoke_for_session(conn: Connection, session_id: str, reason: str, now: int) -> None:
    """A session ended: its grants end too (access tokens included), except ``offline_access``
    ones, which exist precisely to outlive the browser session."""
    ended = sa.select(grants.c.id).where(
        grants.c.session_id == session_id,
        grants.c.offline.is_(False),
        grants.c.revoked_at.is_(None),
    )
    conn.execute(
        access_tokens.update()
        .where(access_tokens.c.grant_id.in_(ended), access_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    conn.execute(
        grants.update()
        .where(
            grants.c.session_id == session_id,
            grants.c.offline.is_(False),
            grants.c.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_reason=reason)
    )
