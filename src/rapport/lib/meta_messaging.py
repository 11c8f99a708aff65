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

import hashlib
import json
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit


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
    story: dict[str, Any] | None = None  # Instagram: the story this message answers
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


def events(
    data: Any, *, expected_object: str, account_id: str | None = None
) -> Iterator[MessagingEvent]:
    """Every event of every entry, in the order Meta sent them.

    With `account_id`, only the entries of that Page or Instagram account: one app has one
    callback URL per object, so every account on the app posts to it.
    """
    if not isinstance(data, dict) or data.get("object") != expected_object:
        raise NotMessagingPayload(f'expected "object": "{expected_object}"')
    for entry in data.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        entry_id = entry.get("id")
        if account_id is not None and entry_id is not None and str(entry_id) != account_id:
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
        story=reply_to.get("story") if isinstance(reply_to, dict) else None,
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


# --- what the events mean, still without domain types ------------------------------------------

_MEDIA = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mp4", "file": ""}


@dataclass(frozen=True)
class Media:
    url: str
    filename: str
    content_type: str


@dataclass(frozen=True)
class Incoming:
    """A message, from the customer or (echo) from the business to the customer (`user_id`)."""

    user_id: str
    provider_id: str
    content: str
    content_kind: str  # text, media, location, reaction, unknown (the core's content types)
    media: tuple[Media, ...]
    thread_refs: tuple[str, ...]
    payload: dict[str, Any]
    sent_at: datetime | None
    echo: bool = False
    reference: str | None = None
    app_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """Delivered or read: by message ids, or (Messenger) by a watermark for one recipient."""

    status: str  # delivered | read
    mids: tuple[str, ...]
    watermark: datetime | None
    user_id: str


def meaning(event: MessagingEvent) -> Incoming | Receipt:
    if event.kind in (EventKind.delivery, EventKind.read):
        status = "delivered" if event.kind == EventKind.delivery else "read"
        return Receipt(status, event.mids, event.watermark, event.sender_id)
    if event.kind in (EventKind.message, EventKind.echo):
        return _incoming_message(event)
    if event.kind == EventKind.reaction:
        return _reaction(event)
    if event.kind == EventKind.postback:
        return _incoming(
            event,
            provider_id=event.mid or _event_key(event),
            content=event.text,
            payload={"postback": event.quick_reply},
        )
    return _incoming(
        event, provider_id=_event_key(event), content="", kind="unknown", payload={"raw": event.raw}
    )


def _event_key(event: MessagingEvent) -> str:
    """A stable id for events that carry none (Meta redelivers the same event unchanged)."""
    digest = hashlib.sha256(
        json.dumps(event.raw, sort_keys=True, ensure_ascii=True).encode()
    ).hexdigest()
    return f"event:{digest[:40]}"


def _incoming(
    event: MessagingEvent,
    *,
    provider_id: str,
    content: str,
    payload: dict[str, Any],
    kind: str = "text",
    media: tuple[Media, ...] = (),
    refs: tuple[str, ...] = (),
) -> Incoming:
    echo = event.kind == EventKind.echo
    return Incoming(
        # An echo goes from the business to the customer: the customer is its recipient.
        user_id=event.recipient_id if echo else event.sender_id,
        provider_id=provider_id,
        content=content,
        content_kind=kind,
        media=media,
        thread_refs=refs,
        payload=payload,
        sent_at=event.timestamp,
        echo=echo,
        reference=event.metadata if echo else None,
        app_id=event.app_id,
    )


def _reaction(event: MessagingEvent) -> Incoming:
    target = event.mid or ""
    stamp = int(event.timestamp.timestamp() * 1000) if event.timestamp else 0
    removed = event.action == "unreact"
    return _incoming(
        event,
        provider_id=f"reaction:{target}:{event.sender_id}:{event.action}:{stamp}",
        content="" if removed else event.emoji,
        kind="reaction",
        payload={"reaction": {"to": target, "emoji": event.emoji, "removed": removed}},
        refs=(target,) if target else (),
    )


def _incoming_message(event: MessagingEvent) -> Incoming:
    payload: dict[str, Any] = {}
    media: list[Media] = []
    notes: list[str] = []
    kind = "text"
    for index, attachment in enumerate(event.attachments):
        if attachment.type in _MEDIA and attachment.url:
            media.append(_media(attachment, index))
        elif attachment.type == "location":
            kind, place = "location", _coordinates(attachment)
            payload["location"] = place
            notes.append(f"{place.get('latitude')}, {place.get('longitude')}")
        else:  # shares, story mentions, reels, templates, fallbacks: shown as their link
            payload.setdefault("attachments", []).append(
                {"type": attachment.type, "url": attachment.url, "title": attachment.title}
            )
            notes.append(" ".join(x for x in (attachment.title, attachment.url) if x))
    content = "\n".join(x for x in (event.text, *notes) if x)
    if media and kind == "text":
        kind = "media"
    if event.quick_reply:
        payload["quick_reply"] = event.quick_reply
    if event.reply_to:
        payload["reply_to"] = event.reply_to
    if isinstance(event.story, dict):
        payload["story"] = event.story
    if event.deleted or event.unsupported or not (content or media):
        kind = "unknown"
        payload.update(deleted=event.deleted, unsupported=event.unsupported, raw=event.raw)
    provider_id = event.mid or _event_key(event)
    if event.deleted:
        provider_id += ":deleted"  # the notice differs from the message it takes back
    return _incoming(
        event,
        provider_id=provider_id,
        content=content,
        kind=kind,
        media=tuple(media),
        payload=payload,
        refs=(event.reply_to,) if event.reply_to else (),
    )


def _media(attachment: Attachment, index: int) -> Media:
    assert attachment.url is not None
    path = urlsplit(attachment.url).path
    name = path.rsplit("/", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    kind = "sticker" if attachment.payload.get("sticker_id") else attachment.type
    guessed = mimetypes.guess_type(name)[0] if name else None
    content_type = guessed or _MEDIA.get(attachment.type) or "application/octet-stream"
    extension = mimetypes.guess_extension(content_type) or ""
    return Media(attachment.url, name or f"{kind}-{index + 1}{extension}", content_type)


def _coordinates(attachment: Attachment) -> dict[str, Any]:
    coordinates = attachment.payload.get("coordinates")
    coordinates = coordinates if isinstance(coordinates, dict) else {}
    return {
        "latitude": coordinates.get("lat"),
        "longitude": coordinates.get("long"),
        "name": attachment.title,
        "url": attachment.url,
    }
