"""What crosses between the core and the channel adapters, and the ports the core calls out through.

Adapters turn provider payloads into `InboundMessage` and `StatusUpdate` (pure parsing), and
turn `OutboundMessage` into a provider call returning a `ProviderReceipt`. The core never talks
to a provider itself; it only records what to send in the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus


@dataclass(frozen=True)
class IdentityClaim:
    """An address the sender is known by, and how sure we are of it."""

    kind: IdentityKind
    value: str
    verification: Verification


@dataclass(frozen=True)
class MediaRef:
    """An attachment as the provider describes it; fetched by the adapter after verification."""

    filename: str
    content_type: str
    url: str | None = None  # provider-hosted URL
    provider_media_id: str | None = None  # id to resolve through the provider's API
    data: bytes | None = None  # already in the payload (email MIME parts, widget uploads)
    content_id: str | None = None  # inline email images (cid:)
    size: int | None = None


class Consent(StrEnum):
    """A customer's consent keyword (SMS STOP/START), recorded on the sender's identity."""

    opt_out = "opt_out"
    opt_in = "opt_in"


@dataclass(frozen=True)
class InboundMessage:
    """One customer message (or an echo of our own send) parsed from a provider payload."""

    sender: tuple[IdentityClaim, ...]
    content: str = ""
    content_type: ContentType = ContentType.text
    provider_id: str | None = None
    sender_name: str = ""
    html: str | None = None
    subject: str | None = None
    attachments: tuple[MediaRef, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict)
    sent_at: datetime | None = None
    # Provider ids of earlier messages this one answers (email In-Reply-To/References, quotes).
    thread_refs: tuple[str, ...] = ()
    # A conversation named by a verified token (signed reply address, widget session).
    conversation_id: int | None = None
    # Our own send coming back from the provider: matched to the outgoing message, never shown
    # as the customer's.
    echo: bool = False
    # Echoes: our idempotency key as the provider carried it back (Messenger `metadata`), which
    # matches our send even when its answer was lost.
    reference: str | None = None
    # Echoes: a message the business sent outside Rapport (the provider's own app), stored as an
    # outgoing message marked so, since the agent must see what the customer was told.
    sent_elsewhere: bool = False
    # Machine-written mail (Auto-Submitted, vacation notices): stored, but triggers nothing.
    auto_reply: bool = False
    # STOP / START on channels that require consent: recorded on the first sender identity.
    consent: Consent | None = None


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status for one of our outgoing messages."""

    provider_id: str
    status: DeliveryStatus
    error: str | None = None
    occurred_at: datetime | None = None
    # Our idempotency key as the provider carried it back (WhatsApp `biz_opaque_callback_data`):
    # finds a send whose answer was lost, so a retry does not send it twice.
    reference: str | None = None
    # A watermark receipt (Messenger reads): every message sent to `recipient` on this inbox up
    # to this time; `provider_id` is then empty.
    up_to: datetime | None = None
    recipient: str | None = None


Parsed = InboundMessage | StatusUpdate


@dataclass(frozen=True)
class OutboundAttachment:
    filename: str
    content_type: str
    storage_key: str
    size: int
    url: str | None = None  # a signed public URL the provider can fetch


@dataclass(frozen=True)
class OutboundMessage:
    """What an adapter sends: everything it needs, nothing it must look up."""

    message_id: int
    conversation_id: int
    idempotency_key: str
    to: str  # the recipient identity value on this channel
    content: str
    html: str | None = None
    subject: str | None = None
    attachments: tuple[OutboundAttachment, ...] = ()
    template: dict[str, Any] | None = None  # {"name", "language", "variables"}
    thread_refs: tuple[str, ...] = ()  # provider ids to thread under (email References)
    reply_to_provider_id: str | None = None
    sender_name: str | None = None
    # Delivery facts from the worker: in_doubt, queued_at, webhook_url (workers/delivery.py).
    metadata: dict[str, Any] = field(default_factory=dict)
    # The contact's last message on this inbox: channels whose window depends on it (Messenger's
    # human agent tag) decide how to send.
    last_incoming_at: datetime | None = None


@dataclass(frozen=True)
class ProviderReceipt:
    provider_id: str | None
    status: DeliveryStatus = DeliveryStatus.sent


class SendError(Exception):
    """A send that did not go out. `retryable` errors are tried again with backoff.

    `not_sent` says the provider certainly did not take the message (it refused the call, or
    the connection was never made), so the next attempt is not in doubt. Leave it False when
    the call may have been accepted (a timeout, a cut connection).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        not_sent: bool = False,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.not_sent = not_sent


@dataclass(frozen=True)
class ReplyContext:
    """What a channel's policy needs to judge a reply before it is written."""

    now: datetime
    last_incoming_at: datetime | None  # the contact's last message on this inbox
    recipient: str | None  # the identity value the reply would go to
    opted_out: bool = False


@dataclass(frozen=True)
class ReplyCheck:
    """The verdict shown in the reply box: allowed or not, and why, in words."""

    allowed: bool
    reason: str | None = None
    needs_template: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChannelPolicy:
    """What a channel allows. Adapters declare one; the reply box and `send_reply` apply it."""

    identity_kind: IdentityKind | None
    max_length: int | None = None
    reply_window: timedelta | None = None
    templates: bool = False
    media: bool = True
    threading: bool = False  # email: subject and threading headers kept
    consent_required: bool = False  # SMS: STOP/START recorded on the identity
    # After `reply_window`, a person (not a bot) may still answer until this much time has passed
    # since the customer's last message (Messenger and Instagram: the HUMAN_AGENT tag, 7 days).
    human_reply_window: timedelta | None = None

    def check(self, ctx: ReplyContext) -> ReplyCheck:
        if self.identity_kind is not None and not ctx.recipient:
            return ReplyCheck(False, "no address on this channel")
        # Consent (SMS STOP) is about the channel that requires it: a phone number that opted out
        # of SMS can still be called or written to on WhatsApp under that channel's own rules.
        if self.consent_required and ctx.opted_out:
            return ReplyCheck(False, "the customer opted out on this channel")
        if self.reply_window is not None:
            closed = (
                ctx.last_incoming_at is None or ctx.now > ctx.last_incoming_at + self.reply_window
            )
            if closed and self._human_window_open(ctx):
                return ReplyCheck(
                    True,
                    "the 24-hour window is closed: a person may still answer for 7 days after "
                    "the customer's last message (sent with the human agent tag)",
                )
            if closed:
                if self.templates:
                    return ReplyCheck(True, "the reply window is closed", needs_template=True)
                return ReplyCheck(False, "the reply window is closed")
        return ReplyCheck(True)

    def _human_window_open(self, ctx: ReplyContext) -> bool:
        return (
            self.human_reply_window is not None
            and ctx.last_incoming_at is not None
            and ctx.now <= ctx.last_incoming_at + self.human_reply_window
        )


class FileStore(Protocol):
    """Where attachment bytes live (a local folder by default, S3-compatible in production)."""

    async def save(self, data: bytes, *, suffix: str = "") -> str: ...

    async def read(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...
