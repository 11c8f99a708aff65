"""Contact (the one profile of a customer) and Identity (one address of it on one kind)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, BigId, JsonDoc
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow


class IdentityKind(StrEnum):
    """Address kinds. A phone number is one kind whether it came by SMS, WhatsApp or voice."""

    phone = "phone"
    email = "email"
    messenger = "messenger"  # page-scoped id
    instagram = "instagram"  # Instagram-scoped id
    telegram = "telegram"  # Telegram user id
    webchat = "webchat"  # anonymous website visitor
    external = "external"  # the customer's own user id (widget identify, API)


class Verification(StrEnum):
    """How an identity is known, strongest first."""

    provider = (
        "provider"  # asserted by the channel provider (a WhatsApp sender, an SMS from-number)
    )
    verified = "verified"  # proven by the customer's site (HMAC or JWT)
    agent = "agent"  # entered by an agent
    unverified = "unverified"  # typed by the customer, a claim only


# Identities a customer proved, or a provider or agent asserted; a typed claim never joins them.
TRUSTED_VERIFICATIONS = frozenset(
    {Verification.provider, Verification.verified, Verification.agent}
)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # Set when this contact was merged into another (kept for unmerge, hidden everywhere else).
    merged_into_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_contacts_account_activity", "account_id", "last_activity_at"),
        Index("ix_contacts_account_name", "account_id", "name"),
    )

    @property
    def display_name(self) -> str:
        return self.name or f"Contact #{self.id}"


class AttributeKind(StrEnum):
    """The types a custom attribute can have."""

    text = "text"
    number = "number"
    date = "date"
    choice = "list"  # one of a fixed list of options


class AttributeDefinition(Base):
    """A custom attribute an account defines for its contacts; values live in Contact.attributes."""

    __tablename__ = "attribute_definitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    options: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "key"),)


class Label(Base):
    """A tag an account puts on contacts (VIP, churn risk...), with an optional colour."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    color: Mapped[str | None] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "name"),)


class ContactLabel(Base):
    __tablename__ = "contact_labels"

    contact_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # Segments ask "which contacts carry label L".
    __table_args__ = (Index("ix_contact_labels_label", "label_id", "contact_id"),)


class Identity(Base):
    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    verification: Mapped[str] = mapped_column(String(16), default=Verification.unverified)
    # Consent for channels that require it (SMS STOP/START): when set, sends are refused.
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    meta: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("account_id", "kind", "value"),
        Index("ix_identities_contact", "contact_id"),
    )
