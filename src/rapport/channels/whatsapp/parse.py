"""WhatsApp Cloud API webhooks read into messages and statuses. Pure: no I/O.

Followed documents: WhatsApp Cloud API "Messages webhook reference" (text, image, audio, video,
document, sticker, location, contacts, reaction, interactive, button, system, unsupported; the
`context` object of replies and forwards; `referral` of ads) and "Status messages webhook
reference" (sent, delivered, read, failed with `errors[]`, `biz_opaque_callback_data`).

A POST is `{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "changes":
[{"field": "messages", "value": {...}}]}]}`; one POST may batch several entries and changes,
and each value may carry `contacts[]`, `messages[]` and `statuses[]`.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rapport.channels.base import BadPayload
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import IdentityClaim, InboundMessage, MediaRef, Parsed, StatusUpdate

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
_STATUSES = {
    "sent": DeliveryStatus.sent,
    "delivered": DeliveryStatus.delivered,
    "read": DeliveryStatus.read,
    "played": DeliveryStatus.read,  # a voice message was played: it was read
    "failed": DeliveryStatus.failed,
}


def load(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("object") != "whatsapp_business_account":
        raise BadPayload('expected "object": "whatsapp_business_account"')
    return data


def parse_payload(data: dict[str, Any], *, phone_number_id: str) -> list[Parsed]:
    """Every message and status for this business number, in the order Meta sent them."""
    parsed: list[Parsed] = []
    for value in _values(data, phone_number_id):
        names = _profile_names(value)
        for message in value.get("messages") or []:
            if isinstance(message, dict):
                parsed.append(parse_message(message, names))
        for status in value.get("statuses") or []:
            if isinstance(status, dict) and (update := parse_status(status)) is not None:
                parsed.append(update)
    return parsed


def _values(data: dict[str, Any], phone_number_id: str) -> Iterator[dict[str, Any]]:
    for entry in data.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value")
            if (change or {}).get("field", "messages") != "messages" or not isinstance(value, dict):
                continue
            # One app may serve several numbers: keep only what was sent to this inbox's number.
            number = (value.get("metadata") or {}).get("phone_number_id")
            if number is not None and str(number) != phone_number_id:
                continue
            yield value


def _profile_names(value: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in value.get("contacts") or []:
        if isinstance(contact, dict) and contact.get("wa_id"):
            names[str(contact["wa_id"])] = str((contact.get("profile") or {}).get("name") or "")
    return names


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError):
        return None


def parse_status(status: dict[str, Any]) -> StatusUpdate | None:
    """A status of one of our sends; statuses Rapport has no use for (deleted) give None."""
    mapped = _STATUSES.get(str(status.get("status")))
    if mapped is None:
        return None
    return StatusUpdate(
        provider_id=str(status.get("id") or ""),
        status=mapped,
        error=_status_error(status) if mapped == DeliveryStatus.failed else None,
        occurred_at=_timestamp(status.get("timestamp")),
        reference=status.get("biz_opaque_callback_data") or None,
    )


def _status_error(status: dict[str, Any]) -> str:
    errors = [e for e in status.get("errors") or [] if isinstance(e, dict)]
    if not errors:
        return "WhatsApp could not deliver the message"
    first = errors[0]
    details = (first.get("error_data") or {}).get("details")
    title = first.get("title") or first.get("message") or "failed"
    text = f"({first.get('code')}) {title}" if first.get("code") is not None else str(title)
    return f"{text}: {details}" if details and details != title else text


def parse_message(message: dict[str, Any], names: dict[str, str]) -> InboundMessage:
    """One customer message; a type Rapport does not know is kept as `unknown`, never dropped."""
    sender = str(message.get("from") or "")
    if not sender:
        raise BadPayload("a WhatsApp message without a sender")
    kind = str(message.get("type") or "unknown")
    content, content_type, extra, media = _content(kind, message)
    context: dict[str, Any] = _dict(message.get("context"))
    refs = _refs(kind, message, context)
    payload: dict[str, Any] = {"type": kind, **extra}
    payload.update(_context_flags(context, message))
    return InboundMessage(
        sender=(
            IdentityClaim(IdentityKind.phone, "+" + sender.lstrip("+"), Verification.provider),
        ),
        sender_name=names.get(sender, ""),
        content=content,
        content_type=content_type,
        provider_id=str(message.get("id") or "") or None,
        attachments=media,
        payload=payload,
        sent_at=_timestamp(message.get("timestamp")),
        thread_refs=refs,
    )


def _refs(kind: str, message: dict[str, Any], context: dict[str, Any]) -> tuple[str, ...]:
    """Provider ids this message answers: the quoted message, or the one reacted to."""
    if kind == "reaction":
        target = (message.get("reaction") or {}).get("message_id")
        return (str(target),) if target else ()
    return (str(context["id"]),) if context.get("id") else ()


def _context_flags(context: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if context.get("id"):
        flags["reply_to"] = str(context["id"])
    if context.get("forwarded") or context.get("frequently_forwarded"):
        flags["forwarded"] = True
    if isinstance(context.get("referred_product"), dict):
        flags["referred_product"] = context["referred_product"]
    if isinstance(message.get("referral"), dict):
        flags["referral"] = message["referral"]
    return flags


Content = tuple[str, ContentType, dict[str, Any], tuple[MediaRef, ...]]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(body: dict[str, Any]) -> Content:
    return str(body.get("body") or ""), ContentType.text, {}, ()


def _system(body: dict[str, Any]) -> Content:
    """The customer changed number, or similar notices: kept and shown as unknown."""
    return str(body.get("body") or ""), ContentType.unknown, {"system": body}, ()


def _content(kind: str, message: dict[str, Any]) -> Content:
    body = _dict(message.get(kind))
    if kind in MEDIA_TYPES:
        return _media(kind, body)
    if kind == "contacts":
        return _contacts(message.get("contacts"))
    if kind in ("interactive", "button"):
        return _choice(kind, body)
    reader = _READERS.get(kind)
    return reader(body) if reader else _unknown(message)


def _media(kind: str, body: dict[str, Any]) -> Content:
    mime = str(body.get("mime_type") or "application/octet-stream")
    base_mime = mime.split(";", maxsplit=1)[0].strip()
    filename = str(body.get("filename") or "") or kind + (
        mimetypes.guess_extension(base_mime) or ""
    )
    ref = MediaRef(filename=filename, content_type=mime, provider_media_id=str(body.get("id")))
    extra: dict[str, Any] = {"media_id": body.get("id"), "sha256": body.get("sha256")}
    if body.get("voice"):
        extra["voice"] = True
    if body.get("animated"):
        extra["animated"] = True
    return str(body.get("caption") or ""), ContentType.media, extra, (ref,)


def _location(body: dict[str, Any]) -> Content:
    place = {k: body.get(k) for k in ("latitude", "longitude", "name", "address", "url")}
    label = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
    coords = f"{body.get('latitude')}, {body.get('longitude')}"
    text = f"{label} ({coords})" if label else coords
    return text, ContentType.location, {"location": place}, ()


def _contacts(cards: Any) -> Content:
    cards = [c for c in cards or [] if isinstance(c, dict)]
    lines = []
    for card in cards:
        name = (card.get("name") or {}).get("formatted_name") or ""
        phones = [p.get("phone") for p in card.get("phones") or [] if p.get("phone")]
        emails = [e.get("email") for e in card.get("emails") or [] if e.get("email")]
        lines.append(" · ".join(str(x) for x in [name, *phones, *emails] if x))
    return "\n".join(lines), ContentType.contact_card, {"contacts": cards}, ()


def _reaction(body: dict[str, Any]) -> Content:
    emoji = str(body.get("emoji") or "")
    # An empty emoji is the customer taking a reaction back.
    extra = {"reaction": {"to": body.get("message_id"), "emoji": emoji, "removed": not emoji}}
    return emoji, ContentType.reaction, extra, ()


def _choice(kind: str, body: dict[str, Any]) -> Content:
    """A button or list row the customer tapped (interactive), or a template quick reply."""
    if kind == "button":
        return str(body.get("text") or ""), ContentType.text, {"button": body}, ()
    reply = _dict(body.get(str(body.get("type"))))
    text = str(reply.get("title") or reply.get("body") or "")
    return text, ContentType.text, {"interactive": body}, ()


def _unknown(message: dict[str, Any]) -> Content:
    errors = [e for e in message.get("errors") or [] if isinstance(e, dict)]
    note = ""
    if errors:
        note = str(
            (errors[0].get("error_data") or {}).get("details") or errors[0].get("title") or ""
        )
    return note, ContentType.unknown, {"raw": message}, ()


_READERS = {"text": _text, "location": _location, "reaction": _reaction, "system": _system}
