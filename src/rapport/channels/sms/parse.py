"""Twilio-compatible messaging webhooks into messages and delivery statuses. Pure: no I/O.

Twilio's "Twilio's request to your incoming message Webhook URL" (messaging/guides/
webhook-request): `application/x-www-form-urlencoded` with MessageSid (SmsSid and
SmsMessageSid repeat it for older integrations), AccountSid, MessagingServiceSid, From, To,
Body, NumMedia, NumSegments, MediaContentType{N} and MediaUrl{N} for N < NumMedia, the
FromCity/FromState/FromZip/FromCountry (and To*) geography when known, and SmsStatus/ApiVersion.
Twilio adds parameters without notice, so every parameter is kept in the message's payload.

The status callback ("Outbound Message Status in Status Callbacks"; "Track the Message Status of
Outbound Messages") posts MessageSid, MessageStatus (queued, sent, delivered, read, undelivered,
failed, plus accepted, scheduled, sending, canceled), ErrorCode when delivery failed,
RawDlrDoneDate for carrier receipts, and the same account fields. A JSON body (Event Streams,
signed with bodySHA256) carries the same facts with camelCase names, inside `data`.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from rapport.channels.base import BadPayload
from rapport.channels.sms.consent import classify
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import IdentityClaim, InboundMessage, MediaRef, Parsed, StatusUpdate

MAX_MEDIA = 10  # "Messages can include up to 10 media files" (Media subresource)

STATUSES: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.queued,
    "scheduled": DeliveryStatus.queued,
    "queued": DeliveryStatus.queued,
    "sending": DeliveryStatus.sending,
    "sent": DeliveryStatus.sent,
    "partially_delivered": DeliveryStatus.sent,
    "delivered": DeliveryStatus.delivered,
    "read": DeliveryStatus.read,
    "undelivered": DeliveryStatus.failed,
    "failed": DeliveryStatus.failed,
    "canceled": DeliveryStatus.failed,
}
INBOUND_STATUSES = {"received", "receiving"}

# The error codes an agent meets most, in words (twilio.com/docs/api/errors/<code>).
ERRORS = {
    "21610": "the customer has opted out with the provider (they must text START)",
    "21614": "the number is not a mobile number",
    "30003": "unreachable destination handset",
    "30004": "message blocked by the recipient or their carrier",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier",
    "30008": "unknown error from the carrier",
    "30034": "the sending number is not registered for A2P 10DLC",
}

# Event Streams' camelCase names for the fields we read (events/event-types/messaging).
_CAMEL = {
    "messageSid": "MessageSid",
    "accountSid": "AccountSid",
    "messagingServiceSid": "MessagingServiceSid",
    "from": "From",
    "to": "To",
    "body": "Body",
    "numMedia": "NumMedia",
    "messageStatus": "MessageStatus",
    "errorCode": "ErrorCode",
}


def fields_of(body: bytes, content_type: str) -> list[dict[str, str]]:
    """The webhook's parameters as flat dicts (one per event; a JSON body may batch)."""
    if content_type.split(";", maxsplit=1)[0].strip().lower() == "application/json":
        return _json_fields(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPayload("the form body is not UTF-8") from exc
    fields: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        fields.setdefault(name, value)
    return [fields]


def _json_fields(body: bytes) -> list[dict[str, str]]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"body is not JSON: {exc}") from exc
    events = data if isinstance(data, list) else [data]
    result = []
    for event in events:
        if not isinstance(event, dict):
            raise BadPayload("each event must be a JSON object")
        inner = event.get("data", event)
        if not isinstance(inner, dict):
            raise BadPayload('"data" must be a JSON object')
        result.append({_CAMEL.get(str(k), str(k)): _text(v) for k, v in inner.items()})
    return result


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def message_sid(fields: Mapping[str, str]) -> str:
    sid = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid")
    if not sid:
        raise BadPayload("MessageSid is missing")
    return sid


def _status_word(fields: Mapping[str, str]) -> str:
    return fields.get("MessageStatus", "").strip().lower()  # Event Streams writes it in capitals


def is_status(fields: Mapping[str, str]) -> bool:
    status = _status_word(fields)
    return bool(status) and status not in INBOUND_STATUSES


def dedupe_key(fields: Mapping[str, str]) -> str:
    """MessageSid for a message; (MessageSid, MessageStatus) for a status callback."""
    if is_status(fields):
        return f"status:{message_sid(fields)}:{_status_word(fields)}"
    return f"message:{message_sid(fields)}"


def parse_fields(fields: Mapping[str, str]) -> Parsed | None:
    if is_status(fields):
        return _status(fields)
    return _message(fields)


def _status(fields: Mapping[str, str]) -> StatusUpdate | None:
    word = _status_word(fields)
    status = STATUSES.get(word)
    if status is None:
        return None  # a status Rapport does not know yet changes nothing
    error = None
    if status == DeliveryStatus.failed:
        code = fields.get("ErrorCode", "")
        words = fields.get("ErrorMessage") or ERRORS.get(code) or word
        error = f"{code}: {words}" if code else words
    return StatusUpdate(provider_id=message_sid(fields), status=status, error=error)


def _media(fields: Mapping[str, str], sid: str) -> tuple[MediaRef, ...]:
    try:
        count = min(int(fields.get("NumMedia") or 0), MAX_MEDIA)
    except ValueError as exc:
        raise BadPayload("NumMedia is not a number") from exc
    refs = []
    for n in range(count):
        url = fields.get(f"MediaUrl{n}")
        if not url:
            continue
        kind = fields.get(f"MediaContentType{n}") or "application/octet-stream"
        extension = mimetypes.guess_extension(kind.split(";")[0].strip()) or ""
        refs.append(MediaRef(filename=f"{sid}-{n}{extension}", content_type=kind, url=url))
    return tuple(refs)


def _message(fields: Mapping[str, str]) -> InboundMessage:
    sid = message_sid(fields)
    sender = fields.get("From")
    if not sender:
        raise BadPayload("From is missing")
    body = fields.get("Body", "")
    media = _media(fields, sid)
    keyword = classify(body, fields.get("OptOutType"))
    payload: dict[str, Any] = {"fields": dict(fields)}
    if keyword is not None:
        payload["keyword"] = {"kind": keyword.kind, "word": keyword.word}
    return InboundMessage(
        sender=(IdentityClaim(IdentityKind.phone, sender, Verification.provider),),
        content=body,
        content_type=ContentType.media if media and not body.strip() else ContentType.text,
        provider_id=sid,
        attachments=media,
        payload=payload,
        consent=keyword.consent if keyword else None,
    )
