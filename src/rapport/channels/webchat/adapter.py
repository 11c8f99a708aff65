"""The `webchat` channel adapter: the website widget.

In:  the widget posts to `/widget/api/{public_token}/...` with its visitor token. The web edge
     checks the token and the site's Origin, then stores an envelope written by `message_envelope`
     or `receipt_envelope` as an inbound event, keyed by the visitor's client-generated id, and
     the worker parses it here (pure) like any provider payload. The envelope is ours, built
     after authentication, so it carries the session's visitor id and bound conversation.
Out:  a reply is in the conversation the moment it is stored, and the visitor's socket already
     pushed it; `send` only confirms (no network). The widget then acknowledges it (delivered)
     and reports when the visitor saw it (read), as status updates through the same inbound path.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError

from rapport.channels.base import BadPayload, Channel, SendContext
from rapport.channels.webchat.config import WebchatConfig
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import (
    ChannelPolicy,
    IdentityClaim,
    InboundMessage,
    MediaRef,
    OutboundMessage,
    Parsed,
    ProviderReceipt,
    StatusUpdate,
)

ENVELOPE_TYPE = "application/vnd.rapport.webchat+json"


def outgoing_provider_id(message_id: int) -> str:
    """Our reply's id on this channel, known before it is sent (receipts may come first)."""
    return f"webchat-out:{message_id}"


def incoming_provider_id(visit_id: int, client_id: str) -> str:
    return f"webchat:{visit_id}:{client_id}"


class _File(BaseModel):
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=200)
    data: str  # base64: the envelope is stored whole, so it can be processed again


class _MessageEnvelope(BaseModel):
    type: Literal["message"]
    visit_id: int
    visitor_id: str = Field(min_length=1, max_length=64)
    conversation_id: int
    client_id: str = Field(min_length=1, max_length=64)
    content: str = Field(default="", max_length=65_536)
    name: str = Field(default="", max_length=200)
    sent_at: datetime
    files: list[_File] = Field(default_factory=list, max_length=5)


class _ReceiptEnvelope(BaseModel):
    type: Literal["receipt"]
    status: Literal["delivered", "read"]
    message_ids: list[int] = Field(max_length=200)
    at: datetime


def message_envelope(
    *,
    visit_id: int,
    visitor_id: str,
    conversation_id: int,
    client_id: str,
    content: str,
    sent_at: datetime,
    name: str = "",
    files: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    """The stored form of one visitor message; `files` are (clean name, content type, bytes)."""
    envelope = _MessageEnvelope(
        type="message",
        visit_id=visit_id,
        visitor_id=visitor_id,
        conversation_id=conversation_id,
        client_id=client_id,
        content=content,
        name=name,
        sent_at=sent_at,
        files=[
            _File(filename=n, content_type=t, data=base64.b64encode(d).decode())
            for n, t, d in files
        ],
    )
    return envelope.model_dump_json().encode()


def receipt_envelope(*, status: str, message_ids: Sequence[int], at: datetime) -> bytes:
    envelope = _ReceiptEnvelope(type="receipt", status=status, message_ids=list(message_ids), at=at)
    return envelope.model_dump_json().encode()


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"envelope is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadPayload("envelope must be a JSON object")
    return data


class WebchatChannel(Channel[WebchatConfig]):
    kind: ClassVar[str] = "webchat"
    label: ClassVar[str] = "Website chat"
    Config = WebchatConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("identity_secret", "jwt_key")
    policy: ClassVar[ChannelPolicy] = ChannelPolicy(identity_kind=IdentityKind.webchat, media=True)

    def parse(self, body: bytes, content_type: str, config: WebchatConfig) -> Sequence[Parsed]:
        data = _load(body)
        try:
            if data.get("type") == "receipt":
                return self._receipts(_ReceiptEnvelope.model_validate(data))
            return [self._message(_MessageEnvelope.model_validate(data))]
        except ValidationError as exc:
            raise BadPayload(exc.errors()[0]["msg"]) from exc

    def _receipts(self, envelope: _ReceiptEnvelope) -> list[Parsed]:
        status = DeliveryStatus(envelope.status)
        return [
            StatusUpdate(outgoing_provider_id(i), status, occurred_at=envelope.at)
            for i in envelope.message_ids
        ]

    def _message(self, envelope: _MessageEnvelope) -> InboundMessage:
        try:
            media = tuple(
                MediaRef(
                    filename=f.filename,
                    content_type=f.content_type,
                    data=base64.b64decode(f.data, validate=True),
                )
                for f in envelope.files
            )
        except ValueError as exc:
            raise BadPayload("attachment data is not base64") from exc
        content = envelope.content.strip()
        if not content and not media:
            raise BadPayload("a message needs text or a file")
        return InboundMessage(
            sender=(
                IdentityClaim(IdentityKind.webchat, envelope.visitor_id, Verification.provider),
            ),
            sender_name=envelope.name,
            content=content,
            content_type=ContentType.media if media and not content else ContentType.text,
            provider_id=incoming_provider_id(envelope.visit_id, envelope.client_id),
            attachments=media,
            payload={"client_id": envelope.client_id, "visit_id": envelope.visit_id},
            sent_at=envelope.sent_at,
            conversation_id=envelope.conversation_id,
        )

    async def send(
        self, outbound: OutboundMessage, config: WebchatConfig, ctx: SendContext
    ) -> ProviderReceipt:
        """Nothing to call: the reply is stored and was pushed to the visitor's socket at commit.

        `sent` means it is available to the visitor; their widget moves it to delivered and read.
        """
        return ProviderReceipt(
            provider_id=outgoing_provider_id(outbound.message_id), status=DeliveryStatus.sent
        )
