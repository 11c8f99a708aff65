"""conversations remember which conversation they were merged into

Revision ID: c4r1
Revises: c4m1
Create Date: 2026-11-23 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4r1"
down_revision: str | Sequence[str] | None = "c4m1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", BIGID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_conversations_merged_into_id_conversations"),
            "conversations",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_conversations_merged_into_id_conversations"), type_="foreignkey"
        )
        batch_op.drop_column("merged_into_id")
