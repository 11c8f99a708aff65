"""Wire schemas of the JSON API (tables live in domain/*/models.py; these are what travels)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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


# --- the website widget's public API -----------------------------------------------------------


class WidgetSessionStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(default=None, max_length=100, description="A token kept earlier")
    locale: str | None = Field(default=None, max_length=16)


class WidgetDetails(BaseModel):
    """What the visitor typed in the pre-chat form or the offline email box (a claim only)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=320)
    phone: str = Field(default="", max_length=40)


class WidgetIdentify(BaseModel):
    """Proof from the customer's site: `user_hash` (HMAC) or `token` (a short-lived JWT)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(default="", max_length=255)
    email: str = Field(default="", max_length=320)
    name: str = Field(default="", max_length=200)
    user_hash: str = Field(default="", max_length=128)
    token: str = Field(default="", max_length=4096)


class WidgetMessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    content: str = Field(min_length=1, max_length=10_000)


class WidgetReceipt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["delivered", "read"]
    up_to: int = Field(ge=1, description="The newest message id the visitor's widget has shown")


class WidgetSender(BaseModel):
    name: str
    avatar_url: str | None


class WidgetAttachmentRead(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    url: str


class WidgetMessageRead(BaseModel):
    id: int
    mine: bool  # written by the visitor (or the same contact on another channel)
    content: str
    content_type: str
    channel: str | None
    status: str
    client_id: str | None
    sender: WidgetSender | None
    attachments: list[WidgetAttachmentRead]
    created_at: datetime


class WidgetMessagePage(BaseModel):
    conversation_id: int | None
    messages: list[WidgetMessageRead]
    has_more: bool


class WidgetAvailability(BaseModel):
    status: Literal["online", "away", "closed"]
    next_open: datetime | None


class WidgetConfigRead(BaseModel):
    name: str
    colour: str
    greeting: str
    avatar_url: str | None
    position: str
    pre_chat: list[dict[str, object]]
    offline_message: str
    availability: WidgetAvailability
    max_upload_bytes: int
    accepted_types: list[str]


class WidgetSessionRead(BaseModel):
    token: str
    conversation_id: int | None
    identified: bool
    details: dict[str, str]


# --- custom events (contact timeline) -----------------------------------------------------------


class CustomEventCreate(BaseModel):
    """Something the customer did elsewhere: `{"name": "order.placed", "properties": {...}}`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, examples=["order.placed"])
    properties: dict[str, Any] = Field(default_factory=dict, examples=[{"total": 42.5}])
    occurred_at: datetime | None = Field(
        default=None, description="When it happened; now when left out."
    )


class CustomEventRead(BaseModel):
    contact_id: int
    name: str
    properties: dict[str, Any]
    occurred_at: datetime
    seq: int = Field(description="The event's number in the account's event log.")
