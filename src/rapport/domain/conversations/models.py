"""Conversation, Message (private notes included) and Attachment."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, BigId, JsonDoc
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow


class Status(StrEnum):
    open = "open"
    pending = "pending"
    snoozed = "snoozed"
    resolved = "resolved"


OPEN_STATUSES = (Status.open, Status.pending, Status.snoozed)


class Direction(StrEnum):
    incoming = "incoming"
    outgoing = "outgoing"


class SenderType(StrEnum):
    contact = "contact"
    user = "user"
    bot = "bot"
    system = "system"


class DeliveryStatus(StrEnum):
    received = "received"  # incoming messages
    queued = "queued"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"


class ContentType(StrEnum):
    text = "text"
    media = "media"
    location = "location"
    contact_card = "contact_card"
    reaction = "reaction"
    template = "template"
    call = "call"  # a phone call's record: payload {"call": {direction, status, duration}}
    unknown = "unknown"


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    # Inbox and channel of the latest customer message: the default reply route.
    inbox_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("inboxes.id", ondelete="SET NULL")
    )
    channel: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=Status.open)
    assignee_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    team_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("teams.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(500), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_incoming_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when this conversation was merged into another: it is closed and points there.
    merged_into_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="SET NULL")
    )

    __table_args__ = (
        # The inbox list: by status, newest activity first, optionally per assignee/team/inbox.
        Index("ix_conversations_list", "account_id", "status", "last_activity_at"),
        Index(
            "ix_conversations_assignee", "account_id", "assignee_id", "status", "last_activity_at"
        ),
        Index("ix_conversations_team", "account_id", "team_id", "status", "last_activity_at"),
        Index("ix_conversations_inbox", "account_id", "inbox_id", "status", "last_activity_at"),
        # The contact's open conversation, and the contact page's list.
        Index("ix_conversations_contact", "contact_id", "status", "last_activity_at"),
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    # The inbox the message travelled on (None for private notes and system messages).
    inbox_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("inboxes.id", ondelete="SET NULL")
    )
    channel: Mapped[str | None] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(16))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_type: Mapped[str] = mapped_column(String(16))
    sender_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    content: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(16), default=ContentType.text)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    provider_id: Mapped[str | None] = mapped_column(String(255))
    client_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.received)
    error: Mapped[str | None] = mapped_column(Text)
    # The outbox job delivering it, so a dead letter can be retried from the message.
    outbox_job_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_messages_conversation", "conversation_id", "id"),
        Index(
            "uq_messages_inbox_provider_id",
            "inbox_id",
            "provider_id",
            unique=True,
            postgresql_where=text("provider_id IS NOT NULL"),
            sqlite_where=text("provider_id IS NOT NULL"),
        ),
        Index(
            "uq_messages_client_id",
            "conversation_id",
            "client_id",
            unique=True,
            postgresql_where=text("client_id IS NOT NULL"),
            sqlite_where=text("client_id IS NOT NULL"),
        ),
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    storage_key: Mapped[str] = mapped_column(String(255))
    # Content-ID for inline email images (cid:), so sanitised HTML can point at the file.
    content_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_attachments_message", "message_id"),)
