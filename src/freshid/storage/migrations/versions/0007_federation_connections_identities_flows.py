"""federation connections identities flows

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_connections",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("client_secret", sa.String(length=512), nullable=True),
        sa.Column("domains", sa.JSON(), nullable=False),
        sa.Column("freshness_skew", sa.Integer(), server_default="60", nullable=False),
        sa.Column("jit", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("link_verified_email", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("show_on_login", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_connections")),
    )
    op.create_table(
        "federated_identities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("linked_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["federation_connections.id"],
            name=op.f("fk_federated_identities_connection_id_federation_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_federated_identities_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federated_identities")),
        sa.UniqueConstraint(
            "connection_id", "subject", name=op.f("uq_federated_identities_connection_id_subject")
        ),
    )
    with op.batch_alter_table("federated_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_federated_identities_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "federation_flows",
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.String(length=24), nullable=False),
        sa.Column("browser_digest", sa.String(length=64), nullable=False),
        sa.Column("interaction_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("force", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=True),
        sa.Column("code_verifier", sa.String(length=128), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["federation_connections.id"],
            name=op.f("fk_federation_flows_connection_id_federation_connections"),
        ),
        sa.PrimaryKeyConstraint("state_digest", name=op.f("pk_federation_flows")),
    )
    op.create_table(
        "saml_assertions_seen",
        sa.Column("connection_id", sa.String(length=24), nullable=False),
        sa.Column("assertion_id", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["federation_connections.id"],
            name=op.f("fk_saml_assertions_seen_connection_id_federation_connections"),
        ),
        sa.PrimaryKeyConstraint(
            "connection_id", "assertion_id", name=op.f("pk_saml_assertions_seen")
        ),
    )
    with op.batch_alter_table("saml_assertions_seen", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saml_assertions_seen_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("saml_assertions_seen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saml_assertions_seen_expires_at"))
    op.drop_table("saml_assertions_seen")
    op.drop_table("federation_flows")
    with op.batch_alter_table("federated_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_federated_identities_user_id"))
    op.drop_table("federated_identities")
    op.drop_table("federation_connections")
