"""Threading: Message-IDs, normalised subjects and the signed per-conversation reply address.

A reply finds its conversation by, in order: the Message-IDs in In-Reply-To/References (RFC 5322
section 3.6.4), a signed `reply+TOKEN@` address, and last the sender with the same subject. The
core applies that order (`conversations.actions`); this module only reads and writes the parts.
"""

from __future__ import annotations

import re

from rapport.lib.crypto import constant_time_equals, derive_key, hmac_sha256_hex

REPLY_PURPOSE = "email-reply"
# 80 bits of HMAC, lower-case hex: mail systems may lower-case local parts, and a local part has
# at most 64 characters (RFC 5321 section 4.5.3.1.1).
_SIGNATURE_CHARS = 20
_TOKEN = re.compile(rf"^(\d{{1,18}})\.([0-9a-f]{{{_SIGNATURE_CHARS}}})$")
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,250})>")
MAX_REFERENCES = 20

# Reply and forward prefixes of the mail clients our customers use, English and Spanish first:
# Re, Fw/Fwd, RV (reenviado), Rta/Resp (respuesta), then AW/WG (de), SV/VS (nordic), TR (fr),
# Antw (nl), Enc (pt), R/Rif (it); with an optional counter such as "Re[2]:" and either colon.
_PREFIX = re.compile(
    r"^\s*(?:re|fwd?|rv|rta|resp|reenv|aw|wg|sv|vs|tr|antw|enc|rif|r)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*",
    re.IGNORECASE,
)


def one_line(value: str) -> str:
    """Header text as one line: CR, LF and runs of whitespace become single spaces."""
    return " ".join(value.split())


def normalise_subject(subject: str) -> str:
    """The subject without reply/forward prefixes, for threading and for the conversation."""
    text = one_line(subject)
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped


def reply_subject(subject: str) -> str:
    base = normalise_subject(subject)
    return f"Re: {base}" if base else "Re:"


def message_ids(value: str | None) -> list[str]:
    """The Message-IDs named in a header, without angle brackets, in order."""
    return _MESSAGE_ID.findall(value or "")


def thread_refs(in_reply_to: str | None, references: str | None) -> tuple[str, ...]:
    """Earlier messages this one answers: In-Reply-To first, then References newest first."""
    ordered = [*message_ids(in_reply_to), *reversed(message_ids(references))]
    seen: dict[str, None] = dict.fromkeys(ordered)
    return tuple(seen)[: MAX_REFERENCES * 2]


def is_message_id(value: str) -> bool:
    """A stored provider id that is a real Message-ID (not a hash key for a mail without one)."""
    return "@" in value and not any(ch in value for ch in " <>\r\n")


def _signature(secret: str, conversation_id: int) -> str:
    key = derive_key(secret, REPLY_PURPOSE)
    return hmac_sha256_hex(key, str(conversation_id))[:_SIGNATURE_CHARS]


def reply_token(secret: str, conversation_id: int) -> str:
    return f"{conversation_id}.{_signature(secret, conversation_id)}"


def verify_reply_token(secret: str, token: str) -> int | None:
    """The conversation a token names, only if this inbox's secret signed it."""
    match = _TOKEN.match(token.strip().lower())
    if match is None or not secret:
        return None
    conversation_id = int(match.group(1))
    if not constant_time_equals(_signature(secret, conversation_id), match.group(2)):
        return None
    return conversation_id


def split_address(address: str) -> tuple[str, str | None, str]:
    """(local part without tag, tag after '+' or None, lower-cased domain)."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    base, plus, tag = local.partition("+")
    return base, (tag if plus else None), domain.lower()


def reply_address(*, inbox_address: str, reply_domain: str, token: str) -> str:
    """`reply+TOKEN@reply_domain`, or the inbox's own address plus-tagged when no domain is set."""
    if reply_domain:
        return f"reply+{token}@{reply_domain.lower()}"
    local, _tag, domain = split_address(inbox_address)
    return f"{local}+{token}@{domain}"
