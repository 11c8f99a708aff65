"""intake cursors: how far each polled mailbox was read (UIDVALIDITY, UID) and who reads it

Revision ID: e501
Revises: w501
Create Date: 2026-11-23 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e501"
down_revision: str | Sequence[str] | None = "w501"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "intake_cursors",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("inbox_id", BIGID, nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("epoch", BIGID, nullable=True),
        sa.Column("position", BIGID, nullable=False),
        sa.Column("lease_owner", sa.String(length=120), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_intake_cursors_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_intake_cursors_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_cursors")),
    )
    with op.batch_alter_table("intake_cursors", schema=None) as batch_op:
        batch_op.create_index("uq_intake_cursors_inbox_source", ["inbox_id", "source"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("intake_cursors", schema=None) as batch_op:
        batch_op.drop_index("uq_intake_cursors_inbox_source")
    op.drop_table("intake_cursors")
