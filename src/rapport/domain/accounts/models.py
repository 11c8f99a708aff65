"""Account: one organisation, the tenant every other row belongs to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, BigId
from rapport.db.types import UTCDateTime
from rapport.lib.clock import utcnow


class JoinPolicy(StrEnum):
    """When a message from another inbox joins the contact's open conversation."""

    always = "always"
    window = "window"  # only if the conversation was active within join_window_hours
    never = "never"  # each inbox keeps its own conversations


class Visibility(StrEnum):
    """Which conversations agents (not supervisors or admins) may see."""

    all = "all"
    team = "team"  # assigned to them, or in one of their teams, or in no team yet
    assigned = "assigned"  # only conversations assigned to them


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    default_region: Mapped[str] = mapped_column(String(2), default="US")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    join_policy: Mapped[str] = mapped_column(String(16), default=JoinPolicy.always)
    join_window_hours: Mapped[int] = mapped_column(Integer, default=72)
    agent_visibility: Mapped[str] = mapped_column(String(16), default=Visibility.all)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
