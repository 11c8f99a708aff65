"""contact merges: merge suggestions per account, and merge records that unmerge exactly

Revision ID: c4m1
Revises: e501
Create Date: 2026-11-23 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c4m1"
down_revision: str | Sequence[str] | None = "e501"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "merge_suggestions",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("other_contact_id", BIGID, nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", JSON_DOC, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by_user_id", BIGID, nullable=True),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _fk("merge_suggestions", "account_id", "accounts", "CASCADE"),
        _fk("merge_suggestions", "contact_id", "contacts", "CASCADE"),
        _fk("merge_suggestions", "other_contact_id", "contacts", "CASCADE"),
        _fk("merge_suggestions", "decided_by_user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_suggestions")),
    )
    with op.batch_alter_table("merge_suggestions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_merge_suggestions_pair",
            ["account_id", "contact_id", "other_contact_id"],
            unique=True,
        )
        batch_op.create_index(
            "ix_merge_suggestions_review", ["account_id", "status", "score"], unique=False
        )
        batch_op.create_index("ix_merge_suggestions_other", ["other_contact_id"], unique=False)

    op.create_table(
        "contact_merges",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("survivor_id", BIGID, nullable=False),
        sa.Column("merged_id", BIGID, nullable=False),
        sa.Column("actor_user_id", BIGID, nullable=True),
        sa.Column("snapshot", JSON_DOC, nullable=False),
        sa.Column("moved", JSON_DOC, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("unmerged_at", TIMESTAMP, nullable=True),
        sa.Column("unmerged_by_user_id", BIGID, nullable=True),
        _fk("contact_merges", "account_id", "accounts", "CASCADE"),
        _fk("contact_merges", "survivor_id", "contacts", "CASCADE"),
        _fk("contact_merges", "merged_id", "contacts", "CASCADE"),
        _fk("contact_merges", "actor_user_id", "users", "SET NULL"),
        _fk("contact_merges", "unmerged_by_user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
    )
    with op.batch_alter_table("contact_merges", schema=None) as batch_op:
        batch_op.create_index("ix_contact_merges_survivor", ["survivor_id", "id"], unique=False)
        batch_op.create_index("ix_contact_merges_merged", ["merged_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contact_merges", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_merges_merged")
        batch_op.drop_index("ix_contact_merges_survivor")
    op.drop_table("contact_merges")
    with op.batch_alter_table("merge_suggestions", schema=None) as batch_op:
        batch_op.drop_index("ix_merge_suggestions_other")
        batch_op.drop_index("ix_merge_suggestions_review")
        batch_op.drop_index("uq_merge_suggestions_pair")
    op.drop_table("merge_suggestions")
