"""visitor sessions of the website widget

Revision ID: w501
Revises: 0001
Create Date: 2026-11-23 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "w501"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "visitor_sessions",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("inbox_id", BIGID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("visitor_id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", BIGID, nullable=True),
        sa.Column("verified_as", sa.String(length=340), nullable=True),
        sa.Column("details", JSON_DOC, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_visitor_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_visitor_sessions_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_visitor_sessions_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visitor_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_visitor_sessions_token_hash")),
    )
    with op.batch_alter_table("visitor_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_visitor_sessions_conversation", ["conversation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visitor_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_visitor_sessions_conversation")
    op.drop_table("visitor_sessions")
