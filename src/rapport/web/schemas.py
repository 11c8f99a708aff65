"""Wire schemas of the JSON API (tables live in domain/*/models.py; these are what travels)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rapport.domain.contacts.models import IdentityKind

# Database ids are 64-bit; a larger number can name nothing, so it is refused up front.
MAX_ID = 2**63 - 1


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Free text from API clients: any Unicode except NUL.
Text = Annotated[str, AfterValidator(_no_nul)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


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


class ConversationCreate(BaseModel):
    """Start an outbound conversation: the first message goes out on the inbox you name."""

    model_config = ConfigDict(extra="forbid")

    contact_id: Id
    inbox_id: Id
    content: Text = Field(min_length=1, max_length=65_536)
    subject: Text = Field(default="", max_length=500)
    client_id: Text | None = Field(
        default=None, max_length=64, description="Your id for the first message: retries are no-ops"
    )


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

    content: Text = Field(min_length=1, max_length=65_536)
    private: bool = False
    inbox_id: Id | None = Field(
        default=None, description="Inbox to reply on; defaults to the conversation's last one"
    )
    client_id: Text | None = Field(
        default=None, max_length=64, description="Your id for this message: retries are no-ops"
    )


class AssignmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee_id: Id | None = None
    team_id: Id | None = None


class StatusUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(pattern="^(open|pending|resolved)$")


# --- contacts ----------------------------------------------------------------------------------


class IdentityRead(_Read):
    id: int
    kind: str
    value: str
    verification: str = Field(description="provider, verified, agent or unverified")
    opted_out_at: datetime | None
    created_at: datetime
    last_seen_at: datetime | None


class IdentityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: Text = Field(
        min_length=1,
        max_length=320,
        description="Normalised on the way in: phones to E.164, email addresses case-folded",
    )


class ContactRead(_Read):
    id: int
    name: str
    company: str
    avatar_url: str | None
    attributes: dict[str, Any]
    merged_into_id: int | None = Field(
        description="Set when this contact was merged into another: follow it"
    )
    identities: list[IdentityRead]
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(default="", max_length=200)
    company: Text = Field(default="", max_length=200)
    identities: list[IdentityCreate] = Field(default_factory=list, max_length=20)


class ContactUpdate(BaseModel):
    """Only the fields you send change."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, max_length=200)
    company: Text | None = Field(default=None, max_length=200)
    attributes: dict[Text, Text | int | float | None] | None = Field(
        default=None,
        max_length=100,
        description='Custom attributes by key (defined in Settings); null or "" unsets one',
    )


class ContactPageRead(BaseModel):
    items: list[ContactRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class MergeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merged_id: Id = Field(description="The contact merged into this one (it survives)")


class MergeRead(_Read):
    id: int = Field(description="Pass to /merges/{merge_id}/unmerge to undo it")
    survivor_id: int
    merged_id: int
    actor_user_id: int | None
    created_at: datetime
    unmerged_at: datetime | None
    unmerged_by_user_id: int | None


# --- segments ----------------------------------------------------------------------------------


class SegmentRead(_Read):
    id: int
    name: str
    description: str
    filters: dict[str, Any] = Field(description="The saved filter (conditions over contacts)")
    created_at: datetime
    updated_at: datetime


class SegmentContactsRead(BaseModel):
    count: int = Field(description="How many contacts are in the segment now")
    items: list[ContactRead]
    next_offset: int | None = Field(description="Pass as `offset` for the next page")


# --- outbound webhooks -------------------------------------------------------------------------


class WebhookRead(_Read):
    id: int
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class WebhookSecretRead(WebhookRead):
    secret: str = Field(description="Signs every delivery; shown only now, keep it safe")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Text = Field(min_length=1, max_length=2000, description="An https:// URL of yours")
    event_types: list[Text] = Field(min_length=1, max_length=100)
    description: Text = Field(default="", max_length=200)
    active: bool = True


class WebhookUpdate(BaseModel):
    """Only the fields you send change."""

    model_config = ConfigDict(extra="forbid")

    url: Text | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[Text] | None = Field(default=None, min_length=1, max_length=100)
    description: Text | None = Field(default=None, max_length=200)
    active: bool | None = None


class WebhookDeliveryRead(_Read):
    id: int
    delivery_id: str = Field(description="Sent as X-Rapport-Delivery; the same on every attempt")
    subscription_id: int
    event_type: str
    event_seq: int
    status: str = Field(description="pending, succeeded or failed (given up)")
    attempts: int
    response_code: int | None
    duration_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    created_at: datetime


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
