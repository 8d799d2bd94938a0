"""Upstream identities linked to FreshID users: lookup, just-in-time creation, account linking.

The link is keyed by the upstream's stable subject (OIDC Core §2 ``sub``, unique per issuer; the
SAML persistent NameID), never by email: addresses are reassigned, subjects are not.

A new link is made in one of three ways, and no other:

- ``verified_email``: the upstream asserts the address *and* that it verified it
  (``email_verified: true``), the connection allows linking by email, and the address is in the
  connection's domains (when it has any). Otherwise an upstream could claim anyone's address and
  take over their account.
- ``jit``: nobody has the address yet and the connection creates users just in time; the same
  verified-address and domain rules apply, so nobody can claim an address they do not control.
- ``account_page``: the signed-in user, with a fresh proof, chose to link this upstream account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection as DB

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.federation.connections import Connection
from freshid.methods.oidc_upstream import UpstreamProof
from freshid.storage import users as user_store
from freshid.storage.prepared import Prepared
from freshid.storage.tables_federation import federated_identities as table
from freshid.storage.users import User
from freshid.tokens.secrets import new_token

JIT = "jit"
VERIFIED_EMAIL = "verified_email"
ACCOUNT_PAGE = "account_page"


@dataclass(frozen=True)
class Identity:
    id: str
    connection_id: str
    subject: str
    user_id: str
    email: str | None
    linked_by: str
    created_at: int
    last_used_at: int | None


def _row(m: Mapping[Any, Any]) -> Identity:
    return Identity(
        m["id"],
        m["connection_id"],
        m["subject"],
        m["user_id"],
        m["email"],
        m["linked_by"],
        int(m["created_at"]),
        m["last_used_at"],
    )


def by_subject(db: DB, connection_id: str, subject: str) -> Identity | None:
    row = db.execute(
        table.select().where(table.c.connection_id == connection_id, table.c.subject == subject)
    ).first()
    return _row(row._mapping) if row else None


# Read on every authorization request, to know what the user could re-prove it with.
_FOR_USER = Prepared(
    sa.select(*(table.c[f.name] for f in fields(Identity)))
    .where(table.c.user_id == sa.bindparam("user_id"))
    .order_by(table.c.created_at, table.c.id)
)


def for_user(db: DB, user_id: str) -> list[Identity]:
    return [_row(m) for m in _FOR_USER.all(db, user_id=user_id)]


def link(
    db: DB, connection: Connection, proof: UpstreamProof, user_id: str, how: str, now: int
) -> Identity:
    identity = Identity(
        new_token(16), connection.id, proof.subject, user_id, proof.email, how, now, now
    )
    db.execute(
        table.insert().values(
            id=identity.id,
            connection_id=connection.id,
            subject=proof.subject,
            user_id=user_id,
            email=proof.email,
            linked_by=how,
            created_at=now,
            last_used_at=now,
        )
    )
    outbox.record(
        db,
        EventType.CREDENTIAL_ADDED,
        now,
        user_id=user_id,
        type="federated_identity",
        method=connection.method,
        connection=connection.id,
        linked_by=how,
    )
    return identity


def touch(db: DB, identity_id: str, now: int) -> None:
    db.execute(table.update().where(table.c.id == identity_id).values(last_used_at=now))


def unlink(db: DB, user_id: str, connection_id: str, now: int) -> bool:
    result = db.execute(
        table.delete().where(table.c.user_id == user_id, table.c.connection_id == connection_id)
    )
    if result.rowcount:
        outbox.record(
            db,
            EventType.CREDENTIAL_REMOVED,
            now,
            user_id=user_id,
            type="federated_identity",
            connection=connection_id,
        )
    return bool(result.rowcount)


@dataclass(frozen=True)
class Resolved:
    user: User | None
    identity: Identity | None
    reason: str | None = None
    """Why nobody was found: ``user_disabled``, ``email_not_verified``,
    ``email_domain_not_allowed``, ``link_required`` (the address belongs to an account that must
    link from its account page), ``no_account``."""


def resolve(db: DB, connection: Connection, proof: UpstreamProof, now: int) -> Resolved:
    """The FreshID user an upstream sign-in stands for, linking or creating one when allowed.

    Runs in the caller's transaction, so a user created here exists only if the sign-in is
    recorded too.
    """
    identity = by_subject(db, connection.id, proof.subject)
    if identity is not None:
        user = user_store.by_id(db, identity.user_id)
        if user is None or user.disabled:
            return Resolved(None, identity, "user_disabled")
        return Resolved(user, identity)
    if proof.email is None or not proof.email_verified:
        return Resolved(None, None, "email_not_verified" if proof.email else "no_account")
    if not connection.allows_email(proof.email):
        return Resolved(None, None, "email_domain_not_allowed")
    existing = user_store.by_email(db, proof.email)
    if existing is not None:
        if existing.disabled:
            return Resolved(None, None, "user_disabled")
        if not connection.link_verified_email:
            return Resolved(None, None, "link_required")
        return Resolved(existing, link(db, connection, proof, existing.id, VERIFIED_EMAIL, now))
    if not connection.jit:
        return Resolved(None, None, "no_account")
    user = user_store.create(db, proof.email, None, now)
    return Resolved(user, link(db, connection, proof, user.id, JIT, now))
