"""Registered clients (relying parties) and the rules on their redirect URIs.

Redirect URIs are matched exactly (RFC 9700 §4.1.3), so registration is where they are checked:
absolute, no fragment (RFC 6749 §3.1.2), https except on loopback (RFC 8252 §7.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.storage.tables import clients
from freshid.tokens.secrets import digest, new_token

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    is_public: bool
    secret_digest: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    default_max_age: int | None
    require_auth_time: bool


def check_redirect_uri(uri: str) -> str:
    # Before parsing: urlsplit silently drops tab, CR and LF, so it would vouch for a URI that is
    # stored, and later compared and redirected to, with them in it.
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        raise ValueError("redirect URI must not contain spaces or control characters")
    parts = urlsplit(uri)
    if not parts.scheme or (parts.scheme in {"http", "https"} and not parts.netloc):
        raise ValueError(f"redirect URI must be absolute: {uri}")
    if parts.fragment or "#" in uri:
        raise ValueError(f"redirect URI must not contain a fragment: {uri}")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ValueError(f"redirect URI must use https unless on loopback: {uri}")
    if parts.scheme in {"javascript", "data", "file", "vbscript"}:
        raise ValueError(f"redirect URI scheme not allowed: {uri}")
    return uri


def _row(row: sa.Row[tuple[object, ...]] | None) -> Client | None:
    if row is None:
        return None
    m = row._mapping
    return Client(
        m["client_id"],
        m["name"],
        bool(m["is_public"]),
        m["secret_digest"],
        tuple(m["redirect_uris"]),
        tuple(m["post_logout_redirect_uris"]),
        m["default_max_age"],
        bool(m["require_auth_time"]),
    )


def create(
    conn: Connection,
    name: str,
    redirect_uris: list[str],
    now: int,
    *,
    public: bool = False,
    post_logout_redirect_uris: list[str] | None = None,
    default_max_age: int | None = None,
    require_auth_time: bool = False,
    client_id: str | None = None,
) -> tuple[Client, str | None]:
    """Register a client; returns it with its secret in clear (shown once, stored as a digest)."""
    if not redirect_uris:
        raise ValueError("at least one redirect URI is required")
    for uri in [*redirect_uris, *(post_logout_redirect_uris or [])]:
        check_redirect_uri(uri)
    if default_max_age is not None and default_max_age < 0:
        raise ValueError("default_max_age must not be negative")
    secret = None if public else new_token(32)
    client = Client(
        client_id or new_token(16),
        name,
        public,
        digest(secret) if secret else None,
        tuple(redirect_uris),
        tuple(post_logout_redirect_uris or ()),
        default_max_age,
        require_auth_time,
    )
    conn.execute(
        clients.insert().values(
            client_id=client.client_id,
            name=name,
            secret_digest=client.secret_digest,
            is_public=public,
            redirect_uris=list(client.redirect_uris),
            post_logout_redirect_uris=list(client.post_logout_redirect_uris),
            default_max_age=default_max_age,
            require_auth_time=require_auth_time,
            created_at=now,
        )
    )
    outbox.record(conn, EventType.CLIENT_CREATED, now, client_id=client.client_id, name=name)
    return client, secret


def by_id(conn: Connection, client_id: str) -> Client | None:
    return _row(conn.execute(clients.select().where(clients.c.client_id == client_id)).first())


def all_clients(conn: Connection) -> list[Client]:
    rows = conn.execute(clients.select().order_by(clients.c.created_at))
    return [c for c in (_row(r) for r in rows) if c is not None]


def rotate_secret(conn: Connection, client_id: str) -> str:
    """A new secret for a confidential client; the old one stops working at once."""
    secret = new_token(32)
    result = conn.execute(
        clients.update()
        .where(clients.c.client_id == client_id, clients.c.is_public.is_(False))
        .values(secret_digest=digest(secret))
    )
    if result.rowcount != 1:
        raise LookupError(f"no confidential client {client_id}")
    return secret


def set_redirect_uris(
    conn: Connection, client_id: str, redirect_uris: list[str], post_logout_redirect_uris: list[str]
) -> None:
    for uri in [*redirect_uris, *post_logout_redirect_uris]:
        check_redirect_uri(uri)
    conn.execute(
        clients.update()
        .where(clients.c.client_id == client_id)
        .values(redirect_uris=redirect_uris, post_logout_redirect_uris=post_logout_redirect_uris)
    )
