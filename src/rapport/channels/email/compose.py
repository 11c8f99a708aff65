"""Writing a reply as a MIME message: threading headers, HTML plus text, attachments.

Header injection is impossible by construction: every header value is checked for CR and LF
before it is set (and the standard library refuses them too), addresses are validated, and the
generated mail re-parses to the same headers (tests/channels/email/test_compose.py).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from rapport.channels.email.config import EmailConfig
from rapport.channels.email.threads import MAX_REFERENCES, is_message_id, reply_subject
from rapport.lib.clock import utcnow
from rapport.lib.identities import InvalidIdentity, normalise_email
from rapport.lib.text import clean_filename

# Lines up to RFC 5322's limit: the standard library folds long display names into several
# encoded words, which its own parser then reads back with a space inserted between them.
MAIL_POLICY = policy.SMTP.clone(max_line_length=998)
MAX_DISPLAY_NAME = 78


class HeaderInjection(ValueError):
    """A header value carried a line break: the mail is refused, never sent."""


@dataclass(frozen=True)
class FileToAttach:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Draft:
    """Everything a reply needs, already looked up."""

    to: str
    content: str
    subject: str | None
    message_id: str  # without angle brackets
    references: Sequence[str]
    reply_to: str | None
    sender_name: str | None
    files: Sequence[FileToAttach] = ()


def checked(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection("a header value contains a line break")
    return value


def _address(display_name: str, address: str) -> Address:
    try:
        normalised = normalise_email(checked(address))
    except InvalidIdentity as exc:
        raise HeaderInjection(f"not a single email address: {address!r}") from exc
    local, _, domain = normalised.rpartition("@")
    name = checked(display_name)[:MAX_DISPLAY_NAME].strip()
    return Address(display_name=name, username=local, domain=domain)


def _text_body(content: str, signature: Sequence[str]) -> str:
    body = content.strip()
    if signature:
        body += "\n\n-- \n" + "\n".join(signature)  # RFC 3676 section 4.3 signature separator
    return body + "\n"


def _html_body(content: str, signature: Sequence[str]) -> str:
    paragraphs = [
        "<p>" + html.escape(block).replace("\n", "<br>") + "</p>"
        for block in content.strip().split("\n\n")
        if block.strip()
    ]
    if signature:
        lines = "<br>".join(html.escape(line) for line in signature)
        paragraphs.append(f'<p class="signature" style="color:#555">{lines}</p>')
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        f'<body style="font-family:sans-serif">{"".join(paragraphs)}</body></html>'
    )


def _subject(draft: Draft, config: EmailConfig, *, threaded: bool) -> str:
    """Re: the conversation's subject; a conversation begun elsewhere gets the inbox's."""
    subject = checked(draft.subject or "").strip()
    base = subject or checked(config.default_subject or config.from_name or config.address)
    return reply_subject(base) if subject or threaded else base


def build_message(draft: Draft, config: EmailConfig) -> EmailMessage:
    message = EmailMessage(policy=MAIL_POLICY)
    name = config.from_name or draft.sender_name or ""
    message["From"] = _address(name, config.address)
    message["To"] = _address("", draft.to)
    refs = [ref for ref in draft.references if is_message_id(ref)][-MAX_REFERENCES:]
    message["Subject"] = _subject(draft, config, threaded=bool(refs))
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = checked(f"<{draft.message_id}>")
    if refs:
        message["In-Reply-To"] = checked(f"<{refs[-1]}>")
        message["References"] = checked(" ".join(f"<{ref}>" for ref in refs))
    if draft.reply_to:
        message["Reply-To"] = _address(name, draft.reply_to)
    message.set_content(_text_body(draft.content, config.signature))
    message.add_alternative(_html_body(draft.content, config.signature), subtype="html")
    for item in draft.files:
        maintype, _, subtype = item.content_type.partition("/")
        message.add_attachment(
            item.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=checked(clean_filename(item.filename, fallback="attachment")),
        )
    return message
