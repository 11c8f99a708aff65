"""Normalising the addresses customers are known by (phone numbers, email addresses)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidIdentity(ValueError):
    """The value cannot be an address of that kind."""


# Pure functions, called for every incoming message, mostly with senders seen before: parsing a
# number or an address costs far more than looking it up. A refused value raises every time.
_REMEMBERED = 8192


@lru_cache(maxsize=_REMEMBERED)
def normalise_phone(value: str, default_region: str | None = None) -> str:
    """E.164 (+14155550100) from what people and providers write, using the account's region."""
    raw = value.strip()
    if raw.startswith("whatsapp:"):
        raw = raw.removeprefix("whatsapp:")
    if raw.isdigit() and len(raw) > 10 and default_region is None:
        raw = "+" + raw  # providers like WhatsApp give international numbers without the plus
    number = _parse(raw, default_region)
    if (number is None or not phonenumbers.is_valid_number(number)) and _bare_international(raw):
        # Providers (Telegram's shared contact, some SMS gateways) give international numbers
        # without the plus; read with the account's region they are not valid numbers.
        international = _parse("+" + raw, None)
        if international is not None and phonenumbers.is_valid_number(international):
            number = international
    if number is None:
        raise InvalidIdentity(f"not a phone number: {value!r}")
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity(f"not a possible phone number: {value!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse(raw: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None


def _bare_international(raw: str) -> bool:
    """Digits only, long enough for a country code, and no national trunk prefix."""
    return raw.isdigit() and len(raw) >= 8 and not raw.startswith("0")


@lru_cache(maxsize=_REMEMBERED)
def normalise_email(value: str) -> str:
    """Trimmed, NFC, domain lower-cased; the local part is case-folded as every major provider does.

    RFC 5321 allows case-sensitive local parts, but no mainstream mailbox provider treats them so,
    and splitting one customer into two contacts costs more than that theoretical case.
    """
    candidate = unicodedata.normalize("NFC", value.strip())
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidIdentity(f"not an email address: {value!r}") from exc
    local, domain = result.normalized.rsplit("@", 1)
    return f"{local.casefold()}@{domain.lower()}"


def format_phone_for_display(e164: str) -> str:
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164
