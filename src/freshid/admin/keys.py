"""Admin API keys: scoped bearer credentials for ``/api/v1``, stored as SHA-256 digests.

A key reads ``fid_<id>_<secret>``: the id finds the row, the 256-bit secret is compared with the
stored digest in constant time (as client secrets are, :mod:`freshid.tokens.secrets`). The key is
shown once, when it is created; it cannot be recovered, only revoked and replaced. Presented as
``Authorization: Bearer <key>`` (RFC 6750 §2.1).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.storage.tables_events import admin_api_keys
from freshid.tokens.secrets import digest, new_token

PREFIX = "fid_"
# last_used_at is a convenience for operators; writing it on every request would turn each read
# into a write transaction.
_LAST_USED_RESOLUTION = 60


class Scope(StrEnum):
    EVENTS_READ = "events:read"
    USERS_READ = "users:read"
    SESSIONS_READ = "sessions:read"
    SESSIONS_WRITE = "sessions:write"
    CLIENTS_READ = "clients:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    CONNECTIONS_READ = "connections:read"
    CONNECTIONS_WRITE = "connections:write"
    METRICS_READ = "metrics:read"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: int
    last_used_at: int | None
    revoked_at: int | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


def _key(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        m["id"],
        m["name"],
        frozenset(m["scopes"]),
        m["created_at"],
        m["last_used_at"],
        m["revoked_at"],
    )


def parse_scopes(values: Iterable[str]) -> frozenset[str]:
    known = {s.value for s in Scope}
    out = set()
    for value in values:
        for scope in value.replace(",", " ").split():
            if scope not in known:
                raise ValueError(f"unknown scope {scope!r}; known: {', '.join(sorted(known))}")
            out.add(scope)
    if not out:
        raise ValueError("at least one scope is required")
    return frozenset(out)


def create(conn: Connection, name: str, scopes: frozenset[str], now: int) -> tuple[ApiKey, str]:
    """Create a key; returns it and the plaintext, which is never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("name must be 1 to 100 characters")
    key_id = secrets.token_hex(8)
    secret = new_token(32)
    conn.execute(
        admin_api_keys.insert().values(
            id=key_id,
            name=name,
            secret_digest=digest(secret),
            scopes=sorted(scopes),
            created_at=now,
        )
    )
    outbox.record(
        conn, EventType.ADMIN_KEY_CREATED, now, key_id=key_id, name=name, scopes=sorted(scopes)
    )
    return ApiKey(key_id, name, scopes, now, None, None), f"{PREFIX}{key_id}_{secret}"


def all_keys(conn: Connection) -> list[ApiKey]:
    rows = conn.execute(admin_api_keys.select().order_by(admin_api_keys.c.created_at))
    return [_key(r) for r in rows]


def revoke(conn: Connection, key_id: str, now: int) -> bool:
    result = conn.execute(
        admin_api_keys.update()
        .where(admin_api_keys.c.id == key_id, admin_api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if result.rowcount:
        outbox.record(conn, EventType.ADMIN_KEY_REVOKED, now, key_id=key_id)
    return bool(result.rowcount)


def authenticate(conn: Connection, presented: str) -> ApiKey | None:
    """The live key a bearer value names, or None; the secret is compared in constant time."""
    if not presented.startswith(PREFIX) or len(presented) > 200:
        return None
    key_id, sep, secret = presented[len(PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        return None
    row = conn.execute(admin_api_keys.select().where(admin_api_keys.c.id == key_id)).first()
    # Compare even when the id is unknown, so timing does not tell which ids exist.
    stored = row._mapping["secret_digest"] if row is not None else digest("")
    valid = hmac.compare_digest(digest(secret), stored)
    if row is None or not valid or row._mapping["revoked_at"] is not None:
        return None
    return _key(row)


def touch(conn: Connection, key: ApiKey, now: int) -> None:
    if key.last_used_at is None or now - key.last_used_at >= _LAST_USED_RESOLUTION:
        conn.execute(
            admin_api_keys.update().where(admin_api_keys.c.id == key.id).values(last_used_at=now)
        )
