"""MergeSuggestion (two contacts that may be one customer) and ContactMerge (a merge, undoable).

A suggestion names a pair once (`contact_id` < `other_contact_id`), with a score out of 100 and
the reasons behind it as data (`{"code": "same_email", "value": ...}`) so pages can word them in
the agent's language. A merge keeps, in `moved`, exactly what it moved and what it changed, so
unmerge puts both contacts back as they were even after new activity on the survivor.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, BigId, JsonDoc
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow


class SuggestionStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    dismissed = "dismissed"


class MergeSuggestion(Base):
    __tablename__ = "merge_suggestions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    # The pair, smaller id first, so a pair has one suggestion whichever side found it.
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    other_contact_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    score: Mapped[int] = mapped_column(Integer, default=0)
    # [{"code": "same_email" | "same_phone" | "similar_name_company", ...details}]
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    status: Mapped[str] = mapped_column(String(16), default=SuggestionStatus.pending)
    decided_by_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index(
            "uq_merge_suggestions_pair", "account_id", "contact_id", "other_contact_id", unique=True
        ),
        # The review page: an account's pending suggestions, best first.
        Index("ix_merge_suggestions_review", "account_id", "status", "score"),
        Index("ix_merge_suggestions_other", "other_contact_id"),
    )


class ContactMerge(Base):
    __tablename__ = "contact_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    survivor_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    merged_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    actor_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    # Both contacts' fields as they were just before (the snapshot an agent can read).
    snapshot: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # What moved and what changed: identity, conversation and event ids, attributes copied.
    moved: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    unmerged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unmerged_by_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_contact_merges_survivor", "survivor_id", "id"),
        Index("ix_contact_merges_merged", "merged_id", "id"),
    )
