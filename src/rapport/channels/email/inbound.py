"""One stored mail (raw RFC 5322 bytes) into a message or a delivery status. Pure: no I/O.

The same bytes come from the SMTP listener and from IMAP polling, so both paths dedupe on the
same key and parse the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from rapport.channels.base import BadPayload
from rapport.channels.email.authresults import sender_authenticated
from rapport.channels.email.config import EmailConfig
from rapport.channels.email.machine import bounce, is_auto_reply
from rapport.channels.email.mime import Bodies, bodies, header, header_all, read_message
from rapport.channels.email.quotes import visible_reply
from rapport.channels.email.threads import (
    message_ids,
    normalise_subject,
    split_address,
    thread_refs,
    verify_reply_token,
)
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import IdentityClaim, InboundMessage, Parsed, StatusUpdate
from rapport.lib.crypto import sha256_hex
from rapport.lib.identities import InvalidIdentity, normalise_email
from rapport.lib.text import sanitise_html

MAX_HTML = 1_000_000
# Headers where the address a mail was sent to can be read (trace headers first).
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")


def dedupe_key(raw: bytes) -> str:
    """Message-ID per mailbox; a hash of From, Date, Subject and the body start without one."""
    message = read_message(raw)
    ids = message_ids(header(message, "Message-ID"))
    if ids:
        return f"mid:{ids[0]}"[:255]
    _head, _sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    fingerprint = (
        "\n".join(
            [header(message, "From"), header(message, "Date"), header(message, "Subject")]
        ).encode()
        + b"\n"
        + body.strip()[:2048]
    )
    return f"hash:{sha256_hex(fingerprint)}"


def parse_mail(raw: bytes, config: EmailConfig) -> Sequence[Parsed]:
    message = read_message(raw)
    report = bounce(message)
    if report is not None and report.original_message_id:
        if not report.failed:
            return []  # delayed/relayed notices change nothing; the raw mail stays stored
        return [
            StatusUpdate(
                provider_id=report.original_message_id,
                status=DeliveryStatus.failed,
                error=report.reason,
            )
        ]
    return [_message(message, raw, config, machine=report is not None)]


def _sender(message: Message) -> tuple[str, str]:
    for name, address in getaddresses(header_all(message, "From")):
        try:
            return " ".join(name.split())[:200], normalise_email(address)
        except InvalidIdentity:
            continue
    raise BadPayload("the mail has no usable From address")


def _conversation_from_token(message: Message, config: EmailConfig) -> int | None:
    """A conversation named by a reply+TOKEN address this inbox signed (forged ones: None)."""
    values = [v for name in _RECIPIENT_HEADERS for v in header_all(message, name)]
    for _name, address in getaddresses(values):
        _local, tag, _domain = split_address(address)
        if tag:
            conversation_id = verify_reply_token(config.reply_secret, tag)
            if conversation_id is not None:
                return conversation_id
    return None


def _sent_at(message: Message) -> Any:
    try:
        return parsedate_to_datetime(header(message, "Date"))
    except (TypeError, ValueError, IndexError):
        return None


def _content(found: Bodies) -> tuple[str, str | None, dict[str, Any]]:
    visible = visible_reply(found.text)
    extra: dict[str, Any] = {}
    if visible != found.text:
        extra["full_text"] = found.text
    html = sanitise_html(found.html, extra_url_schemes=frozenset({"cid"})) if found.html else None
    return visible, (html[:MAX_HTML] if html else None), extra


def _message(message: Message, raw: bytes, config: EmailConfig, *, machine: bool) -> InboundMessage:
    name, address = _sender(message)
    trusted = sender_authenticated(
        header_all(message, "Authentication-Results"),
        from_address=address,
        trusted_ids=config.authserv_ids,
    )
    found = bodies(message)
    content, html, extra = _content(found)
    subject = normalise_subject(header(message, "Subject"))
    email_meta = {
        "from": address,
        "to": [a for _n, a in getaddresses(header_all(message, "To"))][:20],
        "cc": [a for _n, a in getaddresses(header_all(message, "Cc"))][:20],
        "authenticated": trusted,
        "raw_subject": header(message, "Subject")[:500],
    }
    verification = Verification.provider if trusted else Verification.unverified
    return InboundMessage(
        sender=(IdentityClaim(IdentityKind.email, address, verification),),
        sender_name=name,
        content=content,
        content_type=ContentType.text if content or not found.attachments else ContentType.media,
        provider_id=dedupe_key(raw).removeprefix("mid:"),
        html=html,
        subject=subject or None,
        attachments=found.attachments,
        payload={**extra, "email": email_meta},
        sent_at=_sent_at(message),
        thread_refs=thread_refs(header(message, "In-Reply-To"), header(message, "References")),
        conversation_id=_conversation_from_token(message, config),
        echo=address == config.address,
        auto_reply=machine or is_auto_reply(message),
    )
