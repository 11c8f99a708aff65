"""Machine-written mail: auto-replies (RFC 3834) and delivery status notifications (RFC 3464).

An auto-reply is stored flagged and never answered automatically. A failed DSN names the
outgoing message it refers to (the Message-ID inside its returned headers or message) and the
reason, so the core marks that message failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from rapport.channels.email.mime import header, part_text
from rapport.channels.email.threads import message_ids, one_line

_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


def is_auto_reply(message: Message) -> bool:
    """Auto-Submitted other than "no", vacation markers, bulk Precedence, or a null sender."""
    auto = header(message, "Auto-Submitted").lower()
    if auto and auto != "no":
        return True
    if header(message, "X-Autoreply") or header(message, "X-Autorespond"):
        return True
    if header(message, "Precedence").lower() in _BULK_PRECEDENCE:
        return True
    return header(message, "Return-Path").replace(" ", "") == "<>"


@dataclass(frozen=True)
class Bounce:
    original_message_id: str | None
    failed: bool  # Action: failed (delayed, delivered, relayed and expanded are not failures)
    reason: str


def bounce(message: Message) -> Bounce | None:
    """The DSN in a multipart/report; None for any other mail."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    status: Message | None = None
    original: str | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status" and status is None:
            status = part
        elif kind in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = _original_id(part)
    failed, reason = _status(status)
    return Bounce(original, failed, reason)


def _original_id(part: Message) -> str | None:
    headers: Message | None
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else None
        headers = first if isinstance(first, Message) else None
    else:
        headers = HeaderParser().parsestr(part_text(part), headersonly=True)
    if headers is None:
        return None
    ids = message_ids(header(headers, "Message-ID"))
    return ids[0] if ids else None


def _status(status: Message | None) -> tuple[bool, str]:
    """Whether a recipient failed, and the reason a person can read."""
    if status is None:
        return False, ""
    blocks = status.get_payload()
    failed, reasons = False, []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, Message):
            continue
        action = header(block, "Action").lower()
        if action != "failed":
            continue
        failed = True
        recipient = header(block, "Final-Recipient").partition(";")[2].strip()
        diagnostic = header(block, "Diagnostic-Code").partition(";")[2].strip()
        code = header(block, "Status")
        reasons.append(one_line(f"{recipient}: {diagnostic or code}".strip(": ")))
    return failed, "; ".join(reasons)[:500] or "the receiving mail server refused the message"
