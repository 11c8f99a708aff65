"""Wire schemas of the JSON API (tables live in domain/*/models.py; these are what travels)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserRead(_Read):
    id: int
    email: str
    name: str
    role: str
    locale: str | None


class ConversationRead(_Read):
    id: int
    contact_id: int
    inbox_id: int | None
    channel: str | None
    status: str
    assignee_id: int | None
    team_id: int | None
    subject: str
    created_at: datetime
    last_activity_at: datetime


class ConversationPageRead(BaseModel):
    items: list[ConversationRead]
    next_cursor: str | None
    counts: dict[str, int]


class MessageRead(_Read):
    id: int
    conversation_id: int
    inbox_id: int | None
    channel: str | None
    direction: str
    private: bool
    sender_type: str
    sender_user_id: int | None
    content: str
    content_type: str
    status: str
    error: str | None
    provider_id: str | None
    created_at: datetime


class MessageCreate(BaseModel):
    """An agent reply (or a private note) posted through the API."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=65_536)
    private: bool = False
    inbox_id: int | None = Field(
        default=None, description="Inbox to reply on; defaults to the conversation's last one"
    )
    client_id: str | None = Field(
        default=None, max_length=64, description="Your id for this message: retries are no-ops"
    )


class AssignmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee_id: int | None = None
    team_id: int | None = None


class StatusUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(pattern="^(open|pending|resolved)$")
