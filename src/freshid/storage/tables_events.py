"""Tables of the events feature: the audit chain head, admin API keys, webhook endpoints and
deliveries, and the indexes the Events API reads the ``events`` table through.

Timestamps are integer epoch seconds, as in :mod:`freshid.storage.tables`. Admin API keys are
stored as SHA-256 digests only; webhook signing secrets are stored as they are, because HMAC needs
the secret itself (protect the database, as for the TOTP secrets).
"""

from __future__ import annotations

import sqlalchemy as sa

from freshid.storage.tables import Epoch, events, metadata

# Keyset pagination of the Events API (WHERE <filter> AND id > :cursor ORDER BY id): each filter
# has an index that yields its rows already in id order, so a page reads about `limit` index
# entries however many events are stored.
sa.Index("ix_events_type_id", events.c.type, events.c.id)
sa.Index("ix_events_user_id_id", events.c.user_id, events.c.id)
sa.Index("ix_events_session_id_id", events.c.session_id, events.c.id)

event_chain_head = sa.Table(
    "event_chain_head",
    metadata,
    # One row (id = 1). Event writers lock it (SELECT ... FOR UPDATE on PostgreSQL) before they
    # take the next event id, so ids are assigned, and committed, one writer at a time.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

admin_api_keys = sa.Table(
    "admin_api_keys",
    metadata,
    # The public half of the key (``fid_<id>_<secret>``): finds the row without a digest lookup,
    # so the secret is only ever compared in constant time.
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("secret_digest", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("last_used_at", Epoch),
    sa.Column("revoked_at", Epoch),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("description", sa.String(200), nullable=False, server_default=""),
    # Event type names; an empty list means every type.
    sa.Column("event_types", sa.JSON, nullable=False),
    # [{"secret": "whsec_...", "created_at": t, "expires_at": t | null}], newest first. Every
    # unexpired secret signs (Standard Webhooks: several signatures during a rotation).
    sa.Column("secrets", sa.JSON, nullable=False),
    # Only events after this id are delivered: an endpoint does not receive the past.
    sa.Column("start_after_event_id", sa.BigInteger, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled_at", Epoch),
    sa.Column("disabled_reason", sa.String(200)),
    # Failed attempts in a row and when that streak began; a success resets both.
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failing_since", Epoch),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "endpoint_id",
        sa.String(32),
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    # The Standard Webhooks ``webhook-id``: fixed when the delivery is created, the same on every
    # attempt, so receivers can deduplicate an at-least-once delivery.
    sa.Column("message_id", sa.String(40), nullable=False, unique=True),
    # pending -> succeeded | failed (attempts exhausted or endpoint deleted)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # Due time; while an attempt is in flight it is the claim's lease expiry, so a worker killed
    # mid-attempt leaves a delivery that becomes due again by itself.
    sa.Column("next_attempt_at", Epoch, nullable=False),
    sa.Column("claim_token", sa.String(32)),
    sa.Column("last_attempt_at", Epoch),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.String(200)),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("completed_at", Epoch),
    sa.UniqueConstraint("endpoint_id", "event_id"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
)

webhook_dispatch_cursor = sa.Table(
    "webhook_dispatch_cursor",
    metadata,
    # One row (id = 1): the last event id fanned out into deliveries. Dispatchers lock it, so two
    # workers never fan out the same range twice (and the unique constraint would catch it).
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_event_id", sa.BigInteger, nullable=False),
)

admin_users = sa.Table(
    "admin_users",
    metadata,
    # Users with the admin role: they may open the dashboard (/admin/). Granted from the CLI.
    sa.Column(
        "user_id",
        sa.String(64),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("granted_at", Epoch, nullable=False),
)
