"""Webhook endpoints and Standard Webhooks signatures.

Signatures follow the Standard Webhooks specification (v1, "Signature scheme" and "Headers"):

- ``webhook-id``: the message id, the same on every attempt of one delivery;
- ``webhook-timestamp``: integer seconds since the epoch, of this attempt;
- ``webhook-signature``: space-separated ``v1,<base64 signature>``, one per secret in force, the
  signature being HMAC-SHA256(key, ``"{id}.{timestamp}.{body}"``);
- secrets are ``whsec_<base64 of 32 random bytes>``; the HMAC key is the decoded bytes.

During a secret rotation the old secret keeps signing until it expires (24 h by default), so a
receiver can switch to the new secret at any time in that window: every attempt carries one
signature per unexpired secret. The payload follows the specification's recommended shape,
``{"type", "timestamp", "data"}``.

Endpoint URLs must be ``https``, or ``http`` on a loopback address (development); redirects are
not followed when delivering.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Connection

from freshid.events import chain, outbox
from freshid.events.catalog import EventType
from freshid.storage.tables_events import webhook_deliveries, webhook_endpoints

SECRET_PREFIX = "whsec_"
ROTATION_GRACE = 24 * 3600
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# -- signatures ---------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secrets start with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def sign_headers(
    secrets_in_force: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, msg_id, timestamp, body) for s in secrets_in_force
        ),
    }


def payload(event: dict[str, Any]) -> bytes:
    """The body for one event: deterministic, so every attempt sends the same bytes."""
    when = datetime.fromtimestamp(int(event["occurred_at"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return chain.canonical_json({"type": event["type"], "timestamp": when, "data": event})


# -- endpoints ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    description: str
    event_types: tuple[str, ...]
    secrets: tuple[dict[str, Any], ...]
    start_after_event_id: int
    enabled: bool
    disabled_at: int | None
    disabled_reason: str | None
    consecutive_failures: int
    failing_since: int | None
    created_at: int
    updated_at: int

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def secrets_in_force(self, now: int) -> list[str]:
        return [
            s["secret"]
            for s in self.secrets
            if s.get("expires_at") is None or int(s["expires_at"]) > now
        ]

    def as_json(self) -> dict[str, Any]:
        """The endpoint as the API shows it: secrets never, only how many are in force."""
        return {
            "id": self.id,
            "url": self.url,
            "description": self.description,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
            "disabled_at": self.disabled_at,
            "disabled_reason": self.disabled_reason,
            "consecutive_failures": self.consecutive_failures,
            "failing_since": self.failing_since,
            "secrets": [
                {"created_at": s["created_at"], "expires_at": s.get("expires_at")}
                for s in self.secrets
            ],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _endpoint(row: Any) -> Endpoint:
    m = row._mapping
    return Endpoint(
        m["id"],
        m["url"],
        m["description"],
        tuple(m["event_types"]),
        tuple(m["secrets"]),
        int(m["start_after_event_id"]),
        bool(m["enabled"]),
        m["disabled_at"],
        m["disabled_reason"],
        int(m["consecutive_failures"]),
        m["failing_since"],
        int(m["created_at"]),
        int(m["updated_at"]),
    )


def check_url(url: str) -> str:
    if not isinstance(url, str) or len(url) > 2000:
        raise ValueError("url must be a string of at most 2000 characters")
    parts = urlsplit(url)
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("url is malformed") from None
    if parts.scheme not in {"http", "https"} or not host:
        raise ValueError("url must be an absolute http(s) URL")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise ValueError("url must use https unless on a loopback address")
    if parts.username or parts.password or parts.fragment:
        raise ValueError("url must not carry credentials or a fragment")
    return url


def check_event_types(types: Iterable[str]) -> tuple[str, ...]:
    known = {t.value for t in EventType}
    out: list[str] = []
    for t in types:
        if not isinstance(t, str) or t not in known:
            raise ValueError(f"unknown event type: {str(t)[:64]}")
        if t not in out:
            out.append(t)
    return tuple(sorted(out))


def create(
    conn: Connection, url: str, event_types: Iterable[str], description: str, now: int
) -> tuple[Endpoint, str]:
    """Register an endpoint; returns it and its first secret (shown once by the API and CLI)."""
    url, types = check_url(url), check_event_types(event_types)
    if len(description) > 200:
        raise ValueError("description must be at most 200 characters")
    endpoint_id = "ep_" + secrets.token_hex(8)
    secret = new_secret()
    # Its own creation event is the last one it does not receive.
    created_event = outbox.record(
        conn,
        EventType.WEBHOOK_ENDPOINT_CREATED,
        now,
        endpoint_id=endpoint_id,
        event_types=list(types),
    )
    conn.execute(
        webhook_endpoints.insert().values(
            id=endpoint_id,
            url=url,
            description=description,
            event_types=list(types),
            secrets=[{"secret": secret, "created_at": now, "expires_at": None}],
            start_after_event_id=created_event,
            enabled=True,
            consecutive_failures=0,
            created_at=now,
            updated_at=now,
        )
    )
    found = get(conn, endpoint_id)
    assert found is not None
    return found, secret


def get(conn: Connection, endpoint_id: str) -> Endpoint | None:
    row = conn.execute(
        webhook_endpoints.select().where(webhook_endpoints.c.id == endpoint_id)
    ).first()
    return None if row is None else _endpoint(row)


def all_endpoints(conn: Connection) -> list[Endpoint]:
    rows = conn.execute(
        webhook_endpoints.select().order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    )
    return [_endpoint(r) for r in rows]


def update(
    conn: Connection,
    endpoint_id: str,
    now: int,
    *,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
) -> Endpoint | None:
    values: dict[str, Any] = {"updated_at": now}
    if url is not None:
        values["url"] = check_url(url)
    if event_types is not None:
        values["event_types"] = list(check_event_types(event_types))
    if description is not None:
        if len(description) > 200:
            raise ValueError("description must be at most 200 characters")
        values["description"] = description
    result = conn.execute(
        webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id).values(**values)
    )
    if not result.rowcount:
        return None
    changed = sorted(k for k in values if k != "updated_at")
    outbox.record(
        conn, EventType.WEBHOOK_ENDPOINT_UPDATED, now, endpoint_id=endpoint_id, changed=changed
    )
    return get(conn, endpoint_id)


def delete(conn: Connection, endpoint_id: str, now: int) -> bool:
    conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.endpoint_id == endpoint_id))
    result = conn.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == endpoint_id))
    if result.rowcount:
        outbox.record(conn, EventType.WEBHOOK_ENDPOINT_DELETED, now, endpoint_id=endpoint_id)
    return bool(result.rowcount)


def rotate_secret(
    conn: Connection, endpoint_id: str, now: int, grace: int = ROTATION_GRACE
) -> str | None:
    """Add a new secret; the ones in force keep signing for ``grace`` seconds more."""
    found = get(conn, endpoint_id)
    if found is None:
        return None
    secret = new_secret()
    kept = [
        {**s, "expires_at": min(int(s.get("expires_at") or now + grace), now + grace)}
        for s in found.secrets
        if s.get("expires_at") is None or int(s["expires_at"]) > now
    ]
    conn.execute(
        webhook_endpoints.update()
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(
            secrets=[{"secret": secret, "created_at": now, "expires_at": None}, *kept],
            updated_at=now,
        )
    )
    outbox.record(conn, EventType.WEBHOOK_SECRET_ROTATED, now, endpoint_id=endpoint_id)
    return secret


def set_enabled(
    conn: Connection, endpoint_id: str, enabled: bool, now: int, reason: str | None = None
) -> bool:
    """Enable (resetting the failure streak) or disable an endpoint; False if nothing changed."""
    values: dict[str, Any] = (
        {
            "enabled": True,
            "disabled_at": None,
            "disabled_reason": None,
            "consecutive_failures": 0,
            "failing_since": None,
        }
        if enabled
        else {"enabled": False, "disabled_at": now, "disabled_reason": (reason or "")[:200]}
    )
    result = conn.execute(
        webhook_endpoints.update()
        .where(
            webhook_endpoints.c.id == endpoint_id,
            webhook_endpoints.c.enabled == (not enabled),
        )
        .values(updated_at=now, **values)
    )
    if result.rowcount:
        kind = (
            EventType.WEBHOOK_ENDPOINT_ENABLED if enabled else EventType.WEBHOOK_ENDPOINT_DISABLED
        )
        extra = {} if enabled else {"reason": (reason or "")[:200]}
        outbox.record(conn, kind, now, endpoint_id=endpoint_id, **extra)
    return bool(result.rowcount)
