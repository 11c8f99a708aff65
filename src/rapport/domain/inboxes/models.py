"""Inbox (one connected channel account) and InboundEvent (a raw provider call, stored first)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, BigId, JsonDoc
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow


class Inbox(Base):
    __tablename__ = "inboxes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(32))
    # Adapter-owned settings, secrets included, encrypted as a whole (lib.crypto.SecretBox).
    config_encrypted: Mapped[str] = mapped_column(Text, default="")
    # Public, unguessable handle for places a customer can see (widget script tag, reply links).
    public_token: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("teams.id", ondelete="SET NULL"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_inboxes_account", "account_id", "channel"),)


class InboundEvent(Base):
    """A verified provider call, stored before anything else happens, keyed for redeliveries."""

    __tablename__ = "inbound_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    inbox_id: Mapped[int] = mapped_column(BigId, ForeignKey("inboxes.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    meta: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # processed, failed
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("uq_inbound_events_inbox_key", "inbox_id", "dedupe_key", unique=True),
        Index(
            "ix_inbound_events_failed",
            "account_id",
            "received_at",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
    )
