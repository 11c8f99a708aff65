"""SMS rules: consent, the 1,600-character message, and segment counting.

3GPP TS 23.038 defines the GSM 7-bit default alphabet and its extension table (characters that
take an escape plus one septet, two in all). A message in that alphabet fits 160 septets in one
segment and 153 per segment once concatenated (the user data header takes the rest); anything
else goes as UCS-2: 70 UTF-16 units alone, 67 per concatenated segment. A character never
straddles two segments, so escapes and surrogate pairs are kept whole when splitting, which is
how handsets count too. PROVIDERS.md keeps the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rapport.domain.ports import ChannelPolicy

# The default alphabet, in table order (0x1B is the escape and is never sent as text).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7, MULTI_GSM7 = 160, 153
SINGLE_UCS2, MULTI_UCS2 = 70, 67
MAX_BODY_CHARACTERS = 1600  # the Messages API refuses longer bodies


class Encoding(StrEnum):
    gsm7 = "GSM-7"
    ucs2 = "UCS-2"


@dataclass(frozen=True)
class SmsNotes:
    """What the reply box says about an SMS before it is sent."""

    length: int  # characters as a person counts them
    encoding: Encoding
    segments: int  # billed messages; 0 for an empty text


def _gsm7_costs(text: str) -> list[int] | None:
    """Septets per character, or None when a character is outside GSM-7."""
    costs = []
    for char in text:
        if char in GSM7_BASIC:
            costs.append(1)
        elif char in GSM7_EXTENSION:
            costs.append(2)
        else:
            return None
    return costs


def _ucs2_costs(text: str) -> list[int]:
    """UTF-16 code units per character (2 for a surrogate pair such as most emoji)."""
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def _segments(costs: list[int], single: int, multi: int) -> int:
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, room = 1, multi
    for cost in costs:
        if cost > room:
            segments, room = segments + 1, multi
        room -= cost
    return segments


def sms_notes(text: str) -> SmsNotes:
    gsm = _gsm7_costs(text)
    if gsm is not None:
        return SmsNotes(len(text), Encoding.gsm7, _segments(gsm, SINGLE_GSM7, MULTI_GSM7))
    ucs = _ucs2_costs(text)
    return SmsNotes(len(text), Encoding.ucs2, _segments(ucs, SINGLE_UCS2, MULTI_UCS2))


@dataclass(frozen=True)
class SmsPolicy(ChannelPolicy):
    """SMS: phone numbers, consent (STOP/START) enforced, length and segments explained."""

    def compose_notes(self, text: str) -> SmsNotes:
        """Length, encoding (GSM-7 or UCS-2) and segment count of a reply being written."""
        return sms_notes(text)
