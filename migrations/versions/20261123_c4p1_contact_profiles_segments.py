"""contact profiles and segments: custom attribute definitions, labels, saved segments

Revision ID: c4p1
Revises: c4r1
Create Date: 2026-11-23 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision: str = "c4p1"
down_revision: str | Sequence[str] | None = "c4r1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
JSONDOC = (
    sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sqlite.JSON(), "sqlite")
)


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"],
        ["accounts.id"],
        name=op.f(f"fk_{table}_account_id_accounts"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "attribute_definitions",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("options", JSONDOC, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _account_fk("attribute_definitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribute_definitions")),
        sa.UniqueConstraint(
            "account_id", "key", name=op.f("uq_attribute_definitions_account_id_key")
        ),
    )
    op.create_table(
        "labels",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _account_fk("labels"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_labels_account_id_name")),
    )
    op.create_table(
        "contact_labels",
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("label_id", BIGID, nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _account_fk("contact_labels"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_labels_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_contact_labels_label_id_labels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "label_id", name=op.f("pk_contact_labels")),
    )
    with op.batch_alter_table("contact_labels", schema=None) as batch_op:
        batch_op.create_index("ix_contact_labels_label", ["label_id", "contact_id"], unique=False)
    op.create_table(
        "segments",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("filters", JSONDOC, nullable=False),
        sa.Column("created_by_id", BIGID, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _account_fk("segments"),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_segments_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_segments_account_id_name")),
    )


def downgrade() -> None:
    op.drop_table("segments")
    with op.batch_alter_table("contact_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_labels_label")
    op.drop_table("contact_labels")
    op.drop_table("labels")
    op.drop_table("attribute_definitions")
