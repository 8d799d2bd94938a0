"""The schema. Timestamps are integer epoch seconds; secrets appear only as SHA-256 digests.

Everything a protocol flow needs lives here rather than in process memory, so that any
``freshid serve`` node sharing the database can continue any flow.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Epoch = sa.BigInteger

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Epoch, nullable=False),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_digest", sa.String(64)),
    sa.Column("is_public", sa.Boolean, nullable=False),
    sa.Column("redirect_uris", sa.JSON, nullable=False),
    sa.Column("post_logout_redirect_uris", sa.JSON, nullable=False),
    sa.Column("default_max_age", sa.Integer),
    sa.Column("require_auth_time", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Epoch, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("cookie_digest", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("auth_time", Epoch, nullable=False),
    sa.Column("last_seen_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("revoked_at", Epoch),
    sa.Column("revoked_reason", sa.String(64)),
    sa.Column("user_agent", sa.String(256)),
)

session_authentications = sa.Table(
    "session_authentications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "session_id", sa.String(64), sa.ForeignKey("sessions.id"), nullable=False, index=True
    ),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("acr", sa.String(128), nullable=False),
    sa.Column("completed_at", Epoch, nullable=False),
    sa.Column("action", sa.String(128)),
    sa.Column("upstream", sa.JSON),
    sa.Column("event_id", sa.String(64), index=True),
    sa.Column("factors", sa.JSON),
    sa.Column("phishing_resistant", sa.Boolean, nullable=False, server_default=sa.false()),
)

interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("browser_digest", sa.String(64), nullable=False),
    # Null for FreshID's own pages (the account page): those interactions return to a path.
    sa.Column("client_id", sa.String(64), sa.ForeignKey("clients.client_id")),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("completed_at", Epoch),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), sa.ForeignKey("clients.client_id"), nullable=False),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column(
        "session_id", sa.String(64), sa.ForeignKey("sessions.id"), nullable=False, index=True
    ),
    sa.Column("scope", sa.String(1000), nullable=False),
    sa.Column("auth_time", Epoch, nullable=False),
    sa.Column("acr", sa.String(128), nullable=False),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("offline", sa.Boolean, nullable=False, default=False),
    # RFC 9396: the action this grant's proof was made for (bound actions get no refresh token).
    sa.Column("action", sa.String(128)),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("revoked_at", Epoch),
    sa.Column("revoked_reason", sa.String(64)),
)

authorization_codes = sa.Table(
    "authorization_codes",
    metadata,
    sa.Column("code_digest", sa.String(64), primary_key=True),
    # Indexed for the foreign-key check when retention deletes a grant.
    sa.Column("grant_id", sa.String(64), sa.ForeignKey("grants.id"), nullable=False, index=True),
    sa.Column("redirect_uri", sa.String(2000), nullable=False),
    sa.Column("nonce", sa.String(512)),
    sa.Column("code_challenge", sa.String(128)),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("used_at", Epoch),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_digest", sa.String(64), primary_key=True),
    sa.Column("grant_id", sa.String(64), sa.ForeignKey("grants.id"), nullable=False, index=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("used_at", Epoch),
)

access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("grant_id", sa.String(64), sa.ForeignKey("grants.id"), nullable=False, index=True),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("revoked_at", Epoch),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("alg", sa.String(16), nullable=False),
    sa.Column("private_pem", sa.Text, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("retired_at", Epoch),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("occurred_at", Epoch, nullable=False, index=True),
    sa.Column("user_id", sa.String(64)),
    sa.Column("session_id", sa.String(64)),
    sa.Column("client_id", sa.String(64)),
    sa.Column("data", sa.JSON, nullable=False),
    # The audit chain (freshid.events.chain): SHA-256 hex of the previous event and of this one.
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("bucket", sa.String(96), primary_key=True),
    sa.Column("window_start", Epoch, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
)

known_addresses = sa.Table(
    "known_addresses",
    metadata,
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("address_digest", sa.String(64), primary_key=True),
    sa.Column("last_success_at", Epoch, nullable=False),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    # TOTP: the shared secret (it must be readable to compute codes; protect the database).
    sa.Column("secret", sa.String(128)),
    # Passkeys: the WebAuthn credential id (base64url), public key (COSE, base64url), counter.
    sa.Column("credential_id", sa.String(1400), unique=True),
    sa.Column("public_key", sa.Text),
    sa.Column("sign_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("backup_eligible", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("transports", sa.JSON),
    # Recovery codes: SHA-256 of the normalised code.
    sa.Column("code_digest", sa.String(64), unique=True),
    sa.Column("last_used_step", sa.BigInteger),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("confirmed_at", Epoch),
    sa.Column("last_used_at", Epoch),
)

email_codes = sa.Table(
    "email_codes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("interaction_id", sa.String(64), nullable=False, index=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id")),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("code_digest", sa.String(64), nullable=False),
    sa.Column("link_digest", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("used_at", Epoch),
    sa.Column("superseded_at", Epoch),
)

challenges = sa.Table(
    "challenges",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(32), nullable=False),
    # The interaction or user the challenge was issued to; checked when it is used.
    sa.Column("subject", sa.String(64), nullable=False),
    sa.Column("challenge", sa.String(256), nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("used_at", Epoch),
)
