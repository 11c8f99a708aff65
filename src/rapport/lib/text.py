"""Text helpers: safe file names, sanitised HTML, previews."""

from __future__ import annotations

import re
import unicodedata

import nh3

_UNSAFE_NAME = re.compile(r"[^\w.\- ()+@]")


def clean_filename(name: str, fallback: str = "file") -> str:
    """NFKC-normalise and drop control/format characters (zero-width tricks) and path parts."""
    name = unicodedata.normalize("NFKC", name or "")
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    name = _UNSAFE_NAME.sub("_", name)
    return name[:180] or fallback


def sanitise_html(html: str, *, extra_url_schemes: frozenset[str] = frozenset()) -> str:
    """Untrusted HTML (email bodies) reduced to safe formatting; links get rel=noopener.

    `extra_url_schemes` admits more link targets, e.g. `cid` for inline email images, which the
    page rewrites to the stored attachment's URL.
    """
    schemes = nh3.ALLOWED_URL_SCHEMES | extra_url_schemes
    return nh3.clean(html, link_rel="noopener noreferrer nofollow", url_schemes=schemes)


def preview(text: str | None, length: int = 120) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"
