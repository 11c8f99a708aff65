"""Telegram Bot API updates into messages. Pure: no I/O.

The Bot API document ("Getting updates: Update", "Available types: Message"): an Update has an
`update_id` and at most one of message, edited_message, message_reaction, callback_query,
my_chat_member and the other kinds. A Message has message_id, date, chat, `from` (the User:
id, is_bot, first_name, last_name, username, language_code), and one content: text, or photo
(an array of PhotoSize, smallest first), document, audio, voice, video, video_note, animation,
sticker, location, venue, contact, with an optional caption; reply_to_message names the message
it answers. Media is referenced by file_id and fetched with getFile after verification.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rapport.channels.base import BadPayload
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType
from rapport.domain.ports import IdentityClaim, InboundMessage, MediaRef, Parsed

# Update kinds that are about membership, not something a customer said: kept raw, no message.
QUIET_UPDATES = {"my_chat_member", "chat_member", "chat_join_request", "message_reaction_count"}
MESSAGE_UPDATES = ("message", "edited_message", "business_message", "edited_business_message")

# kind -> (default content type, file name prefix, extension)
FILE_KINDS: dict[str, tuple[str, str]] = {
    "animation": ("video/mp4", ".mp4"),
    "document": ("application/octet-stream", ""),
    "audio": ("audio/mpeg", ".mp3"),
    "voice": ("audio/ogg", ".ogg"),
    "video": ("video/mp4", ".mp4"),
    "video_note": ("video/mp4", ".mp4"),
}

Json = Mapping[str, Any]


def load_update(body: bytes) -> dict[str, Any]:
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"body is not JSON: {exc}") from exc
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise BadPayload("an update needs an integer update_id")
    return update


def update_kind(update: Json) -> str:
    return next((k for k in update if k != "update_id"), "unknown")


def message_key(chat_id: object, message_id: object) -> str:
    """Message ids are unique per chat: the provider id is both."""
    return f"{chat_id}:{message_id}"


def _sender(user: Json) -> tuple[IdentityClaim, str]:
    if not isinstance(user.get("id"), int):
        raise BadPayload("the sender has no user id")
    name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)
    claim = IdentityClaim(IdentityKind.telegram, str(user["id"]), Verification.provider)
    return claim, name or str(user.get("username") or "")


def _photo(message: Json) -> MediaRef:
    sizes = [s for s in message["photo"] if isinstance(s, dict)]
    largest = max(
        sizes, key=lambda s: (s.get("width", 0) * s.get("height", 0), s.get("file_size", 0))
    )
    return MediaRef(
        filename=f"photo-{largest.get('file_unique_id', 'file')}.jpg",
        content_type="image/jpeg",
        provider_media_id=largest["file_id"],
        size=largest.get("file_size"),
    )


def _sticker(sticker: Json) -> MediaRef:
    if sticker.get("is_animated"):
        kind, extension = "application/x-tgsticker", ".tgs"
    elif sticker.get("is_video"):
        kind, extension = "video/webm", ".webm"
    else:
        kind, extension = "image/webp", ".webp"
    return MediaRef(
        filename=f"sticker-{sticker.get('file_unique_id', 'file')}{extension}",
        content_type=kind,
        provider_media_id=sticker["file_id"],
        size=sticker.get("file_size"),
    )


def _file(kind: str, item: Json) -> MediaRef:
    default_type, extension = FILE_KINDS[kind]
    name = item.get("file_name") or f"{kind}-{item.get('file_unique_id', 'file')}{extension}"
    return MediaRef(
        filename=str(name),
        content_type=str(item.get("mime_type") or default_type),
        provider_media_id=item["file_id"],
        size=item.get("file_size"),
    )


def _media(message: Json) -> tuple[MediaRef, ...]:
    if message.get("photo"):
        return (_photo(message),)
    if isinstance(message.get("sticker"), dict):
        return (_sticker(message["sticker"]),)
    for kind in FILE_KINDS:  # animation first: an animation also repeats itself as a document
        if isinstance(message.get(kind), dict):
            return (_file(kind, message[kind]),)
    return ()


def _special(
    message: Json, sender_id: int
) -> tuple[ContentType, str, dict[str, Any], list[IdentityClaim]]:
    """Location, venue and shared contacts: their content type, words and payload."""
    if isinstance(message.get("venue"), dict):
        venue = message["venue"]
        where = venue.get("location", {})
        text = ", ".join(p for p in (venue.get("title"), venue.get("address")) if p)
        return ContentType.location, text, {"location": where, "venue": venue}, []
    if isinstance(message.get("location"), dict):
        where = message["location"]
        text = f"{where.get('latitude')}, {where.get('longitude')}"
        return ContentType.location, text, {"location": where}, []
    contact = message.get("contact")
    if isinstance(contact, dict):
        name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
        text = " ".join(p for p in (name, contact.get("phone_number")) if p)
        claims = []
        # A contact whose user_id is the sender's own is their phone number, as Telegram knows it.
        if contact.get("user_id") == sender_id and contact.get("phone_number"):
            claims.append(
                IdentityClaim(IdentityKind.phone, contact["phone_number"], Verification.provider)
            )
        return ContentType.contact_card, text, {"contact": contact}, claims
    return ContentType.unknown, "", {}, []


def _content(
    message: Json, sender_id: int
) -> tuple[ContentType, str, dict[str, Any], list[IdentityClaim]]:
    media = _media(message)
    text = str(message.get("text") or message.get("caption") or "")
    if message.get("text") is not None:
        return ContentType.text, text, {}, []
    if media:
        extra: dict[str, Any] = {}
        if isinstance(message.get("sticker"), dict):
            extra["sticker"] = {k: message["sticker"].get(k) for k in ("emoji", "set_name")}
            text = text or str(message["sticker"].get("emoji") or "")
        return ContentType.media, text, extra, []
    return _special(message, sender_id)


def _message(kind: str, message: Json) -> InboundMessage | None:
    user = message.get("from")
    chat = message.get("chat") or {}
    if not isinstance(user, dict):
        return None  # channel posts carry no person to answer
    claim, name = _sender(user)
    content_type, text, extra, more_claims = _content(message, user["id"])
    key = message_key(chat.get("id"), message.get("message_id"))
    payload: dict[str, Any] = {"chat": chat, **extra}
    refs: tuple[str, ...] = ()
    if isinstance(message.get("reply_to_message"), dict):
        replied = message["reply_to_message"]
        refs = (message_key(chat.get("id"), replied.get("message_id")),)
        payload["reply_to"] = {"message_id": replied.get("message_id"), "text": replied.get("text")}
    provider_id = key
    if kind.startswith("edited"):
        provider_id = f"{key}:edit:{message.get('edit_date', '')}"
        payload["edited"] = key
        refs = (key, *refs)
    if content_type == ContentType.unknown:
        payload["message"] = dict(message)
    return InboundMessage(
        sender=(claim, *more_claims),
        sender_name=name,
        content=text,
        content_type=content_type,
        provider_id=provider_id,
        attachments=_media(message),
        payload=payload,
        thread_refs=refs,
    )


def _reaction(update: Json) -> InboundMessage | None:
    reaction = update["message_reaction"]
    user = reaction.get("user")
    if not isinstance(user, dict):
        return None  # anonymous reactions in groups
    claim, name = _sender(user)
    chat = reaction.get("chat") or {}
    emoji = " ".join(
        r.get("emoji", "") for r in reaction.get("new_reaction", []) if isinstance(r, dict)
    )
    target = message_key(chat.get("id"), reaction.get("message_id"))
    return InboundMessage(
        sender=(claim,),
        sender_name=name,
        content=emoji,
        content_type=ContentType.reaction,
        provider_id=f"reaction:{update['update_id']}",
        payload={"reaction": dict(reaction)},
        thread_refs=(target,),
    )


def _unknown(kind: str, update: Json) -> InboundMessage | None:
    """An update kind Rapport does not read yet: shown as such when a person sent it."""
    body = update.get(kind)
    user = body.get("from") if isinstance(body, dict) else None
    if not isinstance(user, dict):
        return None
    claim, name = _sender(user)
    return InboundMessage(
        sender=(claim,),
        sender_name=name,
        content_type=ContentType.unknown,
        provider_id=f"update:{update['update_id']}",
        payload={"update_type": kind, "update": dict(update)},
    )


def parse_update(update: Json) -> list[Parsed]:
    kind = update_kind(update)
    if kind in MESSAGE_UPDATES and isinstance(update[kind], dict):
        parsed = _message(kind, update[kind])
    elif kind == "message_reaction" and isinstance(update[kind], dict):
        parsed = _reaction(update)
    elif kind in QUIET_UPDATES:
        parsed = None
    else:
        parsed = _unknown(kind, update)
    return [parsed] if parsed is not None else []
