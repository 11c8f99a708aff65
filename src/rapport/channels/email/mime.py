"""Reading MIME: headers (RFC 2047 encoded words), bodies in any charset, attachments, cid images.

Pure functions over `email.message.EmailMessage` objects parsed with the modern policy. Mail in
the wild lies about its charset, so bodies are decoded with fallbacks: a declared ISO-8859-1 is
read as windows-1252 (its superset, as browsers do, WHATWG Encoding "latin1" label), an unknown
charset falls back to UTF-8 then windows-1252, and nothing raises on bad bytes.
"""

from __future__ import annotations

import codecs
import html as html_lib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

import nh3

from rapport.channels.email.threads import one_line
from rapport.domain.ports import MediaRef

# Charset labels that mean windows-1252 in practice (WHATWG Encoding Standard, "windows-1252").
_CP1252_LABELS = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii", "l1"}
_BLOCK_END = re.compile(r"(?i)<br\s*/?>|</(?:p|div|li|tr|h[1-6]|blockquote|pre|table)\s*>")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
MAX_PARTS = 200


def read_message(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def _repair(text: str) -> str:
    """Undo the surrogate escapes left by raw 8-bit bytes in headers (UTF-8, else windows-1252)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("windows-1252", "replace")


def header(message: Message, name: str) -> str:
    """A header's decoded text on one line ("" when absent or unreadable)."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, LookupError):  # malformed encoded words or addresses
        raw = message.get_all(name, failobj=[])
        value = str(raw[0]) if raw else None
    return one_line(_repair(str(value))) if value is not None else ""


def header_all(message: Message, name: str) -> list[str]:
    values = message.get_all(name, failobj=[])
    return [_repair(str(v)) for v in values]


def decode_bytes(data: bytes, charset: str | None) -> str:
    label = (charset or "utf-8").strip().strip('"').lower()
    if label in _CP1252_LABELS:
        label = "windows-1252"
    try:
        codecs.lookup(label)
    except LookupError:
        label = "utf-8"
    try:
        return data.decode(label)
    except UnicodeDecodeError:
        if label == "utf-8":
            return data.decode("windows-1252", "replace")
        return data.decode(label, "replace")


def part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of HTML (the fallback when a mail has no text part)."""
    marked = _BLOCK_END.sub("\n", html)
    text = html_lib.unescape(nh3.clean(marked, tags=set()))
    lines = [line.strip() for line in text.replace("\r", "").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


@dataclass(frozen=True)
class Bodies:
    text: str
    html: str | None
    attachments: tuple[MediaRef, ...]


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True
    return part.get_content_maintype() not in ("text", "multipart") or bool(
        disposition == "inline" and part.get_filename()
    )


def _media(part: Message, index: int) -> MediaRef | None:
    payload = part.get_payload(decode=True)
    if part.get_content_type() == "message/rfc822":
        inner = _subparts(part)
        if inner:
            payload = inner[0].as_bytes()
    if not isinstance(payload, bytes):
        return None
    content_id = header(part, "Content-ID").strip().strip("<>") or None
    name = part.get_filename() or ""
    if not name:
        extension = ".eml" if part.get_content_type() == "message/rfc822" else ""
        name = f"attachment-{index}{extension}"
    return MediaRef(
        filename=one_line(_repair(name)),
        content_type=part.get_content_type(),
        data=payload,
        content_id=content_id,
        size=len(payload),
    )


def bodies(message: Message) -> Bodies:
    """The first text and HTML bodies and every attachment (inline images included)."""
    text: str | None = None
    html: str | None = None
    attachments: list[MediaRef] = []
    for index, part in enumerate(_leaves(message)):
        if index >= MAX_PARTS:
            break
        if _is_attachment(part):
            media = _media(part, index)
            if media is not None:
                attachments.append(media)
        elif part.get_content_type() == "text/html" and html is None:
            html = part_text(part)
        elif part.get_content_type() == "text/plain" and text is None:
            text = part_text(part)
    if text is None:
        text = html_to_text(html) if html else ""
    return Bodies(text.replace("\r\n", "\n").strip(), html, tuple(attachments))


def _subparts(message: Message) -> list[Message]:
    payload = message.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _leaves(message: Message) -> list[Message]:
    """Non-multipart parts in order; an attached message (message/rfc822) stays one leaf."""
    if not message.is_multipart():
        return [message]
    leaves: list[Message] = []
    for part in _subparts(message):
        if part.get_content_type() == "message/rfc822":
            leaves.append(part)
        else:
            leaves.extend(_leaves(part))
    return leaves
