"""Federation tables: upstream connections, linked identities, flows in flight, seen assertions.

Everything a federated sign-in needs between the redirect to the upstream and its answer lives
here, never in process memory, so any ``freshid serve`` node can finish a flow another began.
"""

from __future__ import annotations

import sqlalchemy as sa

from freshid.storage.tables import Epoch, metadata

federation_connections = sa.Table(
    "federation_connections",
    metadata,
    # A short slug chosen by the admin; it names the method ("fed:<slug>") and the callback path.
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # oidc | oauth2 | saml
    sa.Column("name", sa.String(100), nullable=False),
    # Protocol settings (issuer, endpoints, scopes, algorithms, IdP metadata...): one JSON object,
    # read through freshid.federation.connections, which validates its shape.
    sa.Column("config", sa.JSON, nullable=False),
    # The client secret for confidential OIDC/OAuth clients: it must be readable to be sent.
    sa.Column("client_secret", sa.String(512)),
    sa.Column("domains", sa.JSON, nullable=False),
    sa.Column("freshness_skew", sa.Integer, nullable=False, server_default="60"),
    sa.Column("jit", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("link_verified_email", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("show_on_login", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Epoch, nullable=False),
)

federated_identities = sa.Table(
    "federated_identities",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "connection_id",
        sa.String(24),
        sa.ForeignKey("federation_connections.id"),
        nullable=False,
    ),
    # The upstream's stable subject (OIDC ``sub`` for its issuer, or the SAML NameID).
    sa.Column("subject", sa.String(512), nullable=False),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("email", sa.String(320)),
    sa.Column("linked_by", sa.String(32), nullable=False),  # jit | verified_email | account_page
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("last_used_at", Epoch),
    sa.UniqueConstraint("connection_id", "subject"),
)

federation_flows = sa.Table(
    "federation_flows",
    metadata,
    # SHA-256 of the ``state`` (OIDC) or RelayState (SAML) sent upstream.
    sa.Column("state_digest", sa.String(64), primary_key=True),
    sa.Column(
        "connection_id",
        sa.String(24),
        sa.ForeignKey("federation_connections.id"),
        nullable=False,
    ),
    sa.Column("browser_digest", sa.String(64), nullable=False),
    # The interaction to finish (sign-in or re-auth), or null for a link from the account page.
    sa.Column("interaction_id", sa.String(64)),
    sa.Column("purpose", sa.String(16), nullable=False),  # signin | reauth | link
    sa.Column("user_id", sa.String(64)),  # who re-authenticates or links
    sa.Column("force", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("nonce", sa.String(128)),
    # PKCE verifier (RFC 7636): needed in clear for the token request; dies with the flow.
    sa.Column("code_verifier", sa.String(128)),
    # SAML: the AuthnRequest ID the response must answer (InResponseTo).
    sa.Column("request_id", sa.String(128)),
    # SAML ACS arrives cross-site without our cookies: the verified result waits here for the
    # browser's own (cookie-carrying) GET.
    sa.Column("result", sa.JSON),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("used_at", Epoch),
)

saml_assertions_seen = sa.Table(
    "saml_assertions_seen",
    metadata,
    sa.Column(
        "connection_id",
        sa.String(24),
        sa.ForeignKey("federation_connections.id"),
        primary_key=True,
    ),
    sa.Column("assertion_id", sa.String(256), primary_key=True),
    # Kept until the assertion's own NotOnOrAfter: after it, a replay fails the validity check.
    sa.Column("expires_at", Epoch, nullable=False, index=True),
)
