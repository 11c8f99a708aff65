"""What the customer wrote this time: quoted history and signatures cut for display.

The reply parser (mail-parser-reply) knows the "On ... wrote:" lines, Outlook's header blocks
and signature markers of many languages. Spanish support there is young, so the Spanish
attribution lines ("El ... escribió:") and Outlook's Spanish header block ("De: ... Enviado:")
are also cut here first. The full original is always kept next to the cut text.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailReplyParser

LANGUAGES = ["en", "es", "de", "fr", "it", "nl", "sv"]

# "El lun, 3 nov 2025 a las 10:15, Soporte (<soporte@ejemplo.com>) escribió:" (may wrap), and
# the Outlook block "De: ...\nEnviado: ..." / "-----Mensaje original-----".
_SPANISH_CUTS = (
    re.compile(r"^\s*El\s.{0,300}?escribi[óo]\s*:\s*$", re.MULTILINE | re.DOTALL),
    re.compile(r"^\s*-{2,}\s*Mensaje original\s*-{2,}\s*$", re.MULTILINE | re.IGNORECASE),
    re.compile(r"^\s*De:\s.+\n\s*(?:Enviado|Fecha)(?: el)?:\s", re.MULTILINE),
)


def _cut_spanish(text: str) -> str:
    cut = len(text)
    for pattern in _SPANISH_CUTS:
        match = pattern.search(text)
        if match is not None:
            cut = min(cut, match.start())
    return text[:cut]


def visible_reply(text: str) -> str:
    """The new part of a reply without quotes or signature; the whole text if nothing is left."""
    if not text.strip():
        return ""
    head = _cut_spanish(text)
    try:
        replies = EmailReplyParser(languages=LANGUAGES).read(text=head).replies
        body = replies[0].body if replies else head
    except Exception:  # a third-party parser must never lose a customer's message
        body = head
    body = body.strip()
    return body or text.strip()
