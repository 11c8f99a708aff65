"""The Messenger Platform webhook format, shared by Messenger (`object: page`) and Instagram
(`object: instagram`), read into plain records with no domain knowledge.

Followed documents: Messenger Platform "Webhook Events Reference" (messages, message_echoes,
message_deliveries, message_reads, message_reactions, messaging_postbacks) and Instagram Platform
"Webhook Notification Examples" (messages, messaging_seen, message_reactions, postbacks).

A POST carries `entry[]` (several pages or accounts may be batched), each with `messaging[]`
(or `standby[]` while another app holds the thread), each event with `sender.id`,
`recipient.id`, `timestamp` (milliseconds) and exactly one of `message`, `reaction`,
`postback`, `delivery` or `read`. Each channel turns these records into its own messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    message = "message"  # a customer's message
    echo = "echo"  # a message the business sent (from Rapport or elsewhere)
    reaction = "reaction"
    postback = "postback"  # a button the customer pressed
    delivery = "delivery"
    read = "read"
    other = "other"  # an event kind this module does not know: kept, never dropped


@dataclass(frozen=True)
class Attachment:
    type: str  # image, video, audio, file, location, fallback, template, share, story_mention...
    url: str | None
    title: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class MessagingEvent:
    kind: EventKind
    sender_id: str
    recipient_id: str
    timestamp: datetime | None
    raw: dict[str, Any]
    mid: str | None = None
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    reply_to: str | None = None  # the mid this message quotes
    quick_reply: str | None = None  # payload of a quick reply the customer tapped
    metadata: str | None = None  # echoes: the string our send attached (Rapport's reference)
    app_id: str | None = None  # echoes: the app that sent it
    emoji: str = ""
    action: str = ""  # reactions: react / unreact
    mids: tuple[str, ...] = ()  # deliveries
    watermark: datetime | None = None  # deliveries and reads: everything sent before it
    deleted: bool = False  # Instagram: the customer unsent the message
    unsupported: bool = False  # Instagram: a message type the API does not expose


class NotMessagingPayload(ValueError):
    """The body is not a Messenger Platform webhook for the expected object."""


def from_millis(value: Any) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def events(data: Any, *, expected_object: str) -> Iterator[MessagingEvent]:
    """Every event of every entry, in the order Meta sent them."""
    if not isinstance(data, dict) or data.get("object") != expected_object:
        raise NotMessagingPayload(f'expected "object": "{expected_object}"')
    for entry in data.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        for key in ("messaging", "standby"):
            for raw in entry.get(key) or []:
                if isinstance(raw, dict):
                    yield parse_event(raw)


def _id(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    return str(value.get("id", "")) if isinstance(value, dict) else ""


def parse_event(raw: dict[str, Any]) -> MessagingEvent:
    base: dict[str, Any] = {
        "sender_id": _id(raw, "sender"),
        "recipient_id": _id(raw, "recipient"),
        "timestamp": from_millis(raw.get("timestamp")),
        "raw": raw,
    }
    if isinstance(raw.get("message"), dict):
        return _message(raw["message"], base)
    if isinstance(raw.get("reaction"), dict):
        reaction = raw["reaction"]
        return MessagingEvent(
            kind=EventKind.reaction,
            mid=_str(reaction.get("mid")),
            emoji=_str(reaction.get("emoji")) or "",
            action=_str(reaction.get("action")) or "react",
            **base,
        )
    if isinstance(raw.get("postback"), dict):
        postback = raw["postback"]
        return MessagingEvent(
            kind=EventKind.postback,
            mid=_str(postback.get("mid")),
            text=_str(postback.get("title")) or "",
            quick_reply=_str(postback.get("payload")),
            **base,
        )
    return _receipt(raw, base)


def _receipt(raw: dict[str, Any], base: dict[str, Any]) -> MessagingEvent:
    for key, kind in (("delivery", EventKind.delivery), ("read", EventKind.read)):
        receipt = raw.get(key)
        if isinstance(receipt, dict):
            mids = receipt.get("mids") or ([receipt["mid"]] if receipt.get("mid") else [])
            return MessagingEvent(
                kind=kind,
                mids=tuple(str(m) for m in mids),
                watermark=from_millis(receipt.get("watermark")),
                **base,
            )
    return MessagingEvent(kind=EventKind.other, **base)


def _message(message: dict[str, Any], base: dict[str, Any]) -> MessagingEvent:
    reply_to = message.get("reply_to")
    quick = message.get("quick_reply")
    return MessagingEvent(
        kind=EventKind.echo if message.get("is_echo") else EventKind.message,
        mid=_str(message.get("mid")),
        text=_str(message.get("text")) or "",
        attachments=tuple(_attachment(a) for a in message.get("attachments") or [] if a),
        reply_to=_str(reply_to.get("mid")) if isinstance(reply_to, dict) else None,
        quick_reply=_str(quick.get("payload")) if isinstance(quick, dict) else None,
        metadata=_str(message.get("metadata")),
        app_id=_str(message.get("app_id")),
        deleted=bool(message.get("is_deleted")),
        unsupported=bool(message.get("is_unsupported")),
        **base,
    )


def _attachment(raw: Any) -> Attachment:
    raw = raw if isinstance(raw, dict) else {}
    payload = raw.get("payload") if isinstance(raw.get("payload"), dict) else {}
    assert isinstance(payload, dict)
    url = _str(payload.get("url")) or _str(raw.get("url"))
    return Attachment(
        type=_str(raw.get("type")) or "unknown",
        url=url,
        title=_str(raw.get("title")) or _str(payload.get("title")),
        payload=payload,
    )


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
