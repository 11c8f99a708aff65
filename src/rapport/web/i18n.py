"""English and Spanish through Babel catalogs: the user's preference, then Accept-Language."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("en", "es")
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"


@cache
def translations(locale: str) -> NullTranslations:
    """The catalog for a locale, compiled in memory from its .po file (no build step)."""
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == "en" or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def N_(message: str) -> str:
    """Mark a string for the catalog where it is translated later, at render time."""
    return message


def negotiate(accept_language: str | None, default: str = "en") -> str:
    """The best supported locale for an Accept-Language header."""
    if not accept_language:
        return default
    preferred: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            preferred.append((quality, tag.strip()))
    for _quality, tag in sorted(preferred, key=lambda item: -item[0]):
        language = tag.replace("_", "-").split("-")[0].lower()
        if language in LOCALES:
            return language
    return default


def locale_name(code: str) -> str:
    return str(Locale.parse(code).get_display_name(code)).capitalize()
