"""Verifying the audit chain, and signed checkpoints of its head.

``verify`` re-reads every event in id order and recomputes the chain (:mod:`freshid.events.chain`):

- a row whose recomputed hash differs from its stored ``hash`` was **edited**;
- a row whose ``prev_hash`` is not the previous row's hash follows a **deleted, inserted or
  reordered** row (ids are part of the hashed content, so renumbering is caught the same way);
- a chain that ends before the ``event_chain_head`` row says it does was **truncated**.

An attacker who can write the database can rewrite the whole chain and the head consistently, so
the chain alone proves only internal consistency. A **checkpoint** closes that gap: the chain
head (``event_id``, ``hash``) signed as a compact JWS (RFC 7515) with the provider's current ES256
signing key (RFC 7518 §3.4), exported as a small JSON document that auditors keep elsewhere.
Verifying against a checkpoint proves that the log still contains that event with that hash:
a log truncated or rolled back behind it, or rewritten before it, fails.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from freshid.events import chain
from freshid.storage.tables import events
from freshid.tokens import jws
from freshid.tokens.keys import KeyRing, SigningKey

CHECKPOINT_FORMAT = "freshid-audit-checkpoint/1"
CHECKPOINT_TYP = "freshid-audit-checkpoint+jwt"
_BATCH = 5000

_COLUMNS = (
    events.c.id,
    events.c.type,
    events.c.occurred_at,
    events.c.user_id,
    events.c.session_id,
    events.c.client_id,
    events.c.data,
    events.c.prev_hash,
    events.c.hash,
)


@dataclass(frozen=True)
class Break:
    """The first broken link: the event at which the chain stops holding, and why."""

    event_id: int | None
    reason: str


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint's claims."""

    issuer: str
    event_id: int
    hash: str
    created_at: int
    kid: str


@dataclass
class Report:
    events: int = 0
    last_id: int = 0
    last_hash: str = chain.GENESIS
    broken_links: int = 0
    first_break: Break | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_break is None and all(c["ok"] for c in self.checkpoints)

    def _broken(self, event_id: int | None, reason: str) -> None:
        self.broken_links += 1
        if self.first_break is None:
            self.first_break = Break(event_id, reason)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "last_id": self.last_id,
            "last_hash": self.last_hash,
            "broken_links": self.broken_links,
            "first_break": (
                None
                if self.first_break is None
                else {"event_id": self.first_break.event_id, "reason": self.first_break.reason}
            ),
            "checkpoints": self.checkpoints,
        }


def _rows(read: Callable[[], AbstractContextManager[Connection]], upto: int) -> Iterator[Any]:
    """Every event with id <= upto, in id order, read in bounded batches (keyset pagination)."""
    after = -1
    while True:
        with read() as conn:
            batch = conn.execute(
                sa.select(*_COLUMNS)
                .where(events.c.id > after, events.c.id <= upto)
                .order_by(events.c.id)
                .limit(_BATCH)
            ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].id


def verify(
    read: Callable[[], AbstractContextManager[Connection]],
    checkpoints: Iterable[Checkpoint] = (),
) -> Report:
    """Check the whole chain up to the head as it is now; events appended meanwhile are left out.

    ``read`` opens a read transaction (``Database.read``). Every broken link is counted; the
    first one is named.
    """
    report = Report()
    with read() as conn:
        head_id, head_hash = chain.read_head(conn)
    wanted = {c.event_id: c for c in checkpoints}
    seen: dict[int, str] = {0: chain.GENESIS}  # a checkpoint of the empty log
    prev = chain.GENESIS
    digest_of = chain.fields_hash
    compare = hmac.compare_digest
    for row in _rows(read, head_id):
        event_id, kind, occurred_at, user_id, session_id, client_id, data, prev_hash, stored = row
        report.events += 1
        if not compare(str(prev_hash), prev):
            report._broken(
                event_id,
                f"event {event_id}: prev_hash does not match the hash of the event before it "
                "(an event was deleted, inserted or reordered before this one)",
            )
        try:
            recomputed = digest_of(
                event_id, kind, occurred_at, user_id, session_id, client_id, data, prev_hash
            )
        except (TypeError, ValueError):
            recomputed = ""
        if not compare(recomputed, str(stored)):
            report._broken(event_id, f"event {event_id}: contents do not match its hash (edited)")
        # Continue from the stored hash, so one edit is reported once, not on every later row.
        prev = str(stored)
        if event_id in wanted:
            seen[int(event_id)] = prev
    if report.events:
        report.last_id, report.last_hash = int(event_id), prev
    if report.last_id != head_id or not hmac.compare_digest(report.last_hash, head_hash):
        report._broken(
            report.last_id or None,
            f"the chain ends at event {report.last_id} but its head records event {head_id}: "
            "events were removed from the end (truncation)",
        )
    for cp in checkpoints:
        stored = seen.get(cp.event_id)
        if stored is None:
            result = {
                "event_id": cp.event_id,
                "ok": False,
                "reason": f"the log ends at event {report.last_id}, before checkpoint event "
                f"{cp.event_id}: truncated or rolled back",
            }
            if cp.event_id <= report.last_id:
                result["reason"] = f"checkpoint event {cp.event_id} is missing from the log"
        elif not hmac.compare_digest(stored, cp.hash):
            result = {
                "event_id": cp.event_id,
                "ok": False,
                "reason": f"event {cp.event_id} has a different hash than at the checkpoint "
                "(the log was rewritten up to it)",
            }
        else:
            result = {"event_id": cp.event_id, "ok": True, "created_at": cp.created_at}
        report.checkpoints.append(result)
    return report


def make_checkpoint(conn: Connection, ring: KeyRing, issuer: str, now: int) -> dict[str, Any]:
    """Sign the current chain head; the returned JSON document is what auditors keep."""
    head_id, head_hash = chain.read_head(conn)
    key = ring.active
    claims = {"iss": issuer, "iat": now, "event_id": head_id, "hash": head_hash}
    return {
        "format": CHECKPOINT_FORMAT,
        "issuer": issuer,
        "event_id": head_id,
        "hash": head_hash,
        "created_at": now,
        "kid": key.kid,
        # The public key, so an auditor can check the signature against a JWKS they pinned.
        "jwk": key.public_jwk(),
        "jws": jws.sign_es256(claims, key.private_key, key.kid, typ=CHECKPOINT_TYP),
    }


class CheckpointError(ValueError):
    """The document is not a checkpoint or its signature does not verify."""


def read_checkpoint(document: str, keys: Iterable[SigningKey]) -> Checkpoint:
    """Parse and verify a checkpoint document against the provider's keys, retired ones included.

    The claims come from the signed JWS only; the document's plain fields are for people.
    """
    try:
        doc = json.loads(document)
    except json.JSONDecodeError:
        raise CheckpointError("not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"not a {CHECKPOINT_FORMAT} document")
    by_kid = {k.kid: k.public_key for k in keys}
    try:
        claims = jws.verify(str(doc.get("jws", "")), by_kid.get, expected_typ=CHECKPOINT_TYP)
        kid = str(jws.peek_header(str(doc["jws"]))["kid"])
    except jws.JWSError as exc:
        raise CheckpointError(f"signature: {exc}") from None
    event_id, digest = claims.get("event_id"), claims.get("hash")
    if not isinstance(event_id, int) or not isinstance(digest, str):
        raise CheckpointError("claims event_id and hash are required")
    return Checkpoint(str(claims.get("iss", "")), event_id, digest, int(claims.get("iat", 0)), kid)
