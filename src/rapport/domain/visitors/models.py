"""VisitorSession: one browser talking through a website widget inbox.

The browser keeps a random token; only its SHA-256 is stored. The session names the visitor's
identity on the `webchat` kind (`visitor_id`) and the one conversation the visitor may read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, BigId, JsonDoc
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow


class VisitorSession(Base):
    __tablename__ = "visitor_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    inbox_id: Mapped[int] = mapped_column(BigId, ForeignKey("inboxes.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The value of the visitor's `webchat` identity; replaced when another person identifies.
    visitor_id: Mapped[str] = mapped_column(String(64))
    # The only conversation this browser may read (set by its first message or by identify).
    conversation_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="SET NULL")
    )
    # "kind:value" of the identity proven by HMAC or JWT, so a second person is told apart.
    verified_as: Mapped[str | None] = mapped_column(String(340))
    # What the visitor typed (pre-chat form, offline email), kept as they wrote it.
    details: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_visitor_sessions_conversation", "conversation_id"),)
