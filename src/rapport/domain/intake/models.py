"""IntakeCursor: the position reached in one polled source of an inbox, and its reader's lease."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, BigId
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow


class IntakeCursor(Base):
    """For IMAP: source "imap:user@host:port/INBOX", epoch UIDVALIDITY, position the last UID."""

    __tablename__ = "intake_cursors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id", ondelete="CASCADE"))
    inbox_id: Mapped[int] = mapped_column(BigId, ForeignKey("inboxes.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(200))
    epoch: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the position last moved (a new epoch rescans from shortly before this).
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("uq_intake_cursors_inbox_source", "inbox_id", "source", unique=True),)
