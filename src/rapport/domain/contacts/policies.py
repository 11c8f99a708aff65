"""Pure rules for contact data: identity claims, custom attribute values, labels and custom event
payloads."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rapport.domain.contacts.models import AttributeKind, IdentityKind
from rapport.domain.errors import InvalidInput
from rapport.domain.ports import IdentityClaim
from rapport.lib.identities import InvalidIdentity, normalise_email, normalise_phone

AttributeValue = str | int | float

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TEXT_MAX = 500
OPTION_MAX = 60
OPTIONS_MAX = 50
LABEL_MAX = 60
# Label colours come from a fixed palette: pages are served with a CSP that forbids inline styles,
# and a palette keeps labels readable on every background.
LABEL_COLORS = ("gray", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink")

# Custom events: a short machine name ("order.placed") and a small JSON object of properties.
EVENT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\- ]{0,63}$")
EVENT_PROPERTIES_MAX_BYTES = 8192
EVENT_PROPERTIES_MAX_KEYS = 50
EVENT_PROPERTIES_MAX_DEPTH = 5


def normalise_claim(claim: IdentityClaim, *, default_region: str | None) -> IdentityClaim:
    """The claim with its value in canonical form (E.164 phones, case-folded emails)."""
    try:
        if claim.kind == IdentityKind.phone:
            value = normalise_phone(claim.value, default_region)
        elif claim.kind == IdentityKind.email:
            value = normalise_email(claim.value)
        else:
            value = claim.value.strip()
    except InvalidIdentity as exc:
        raise InvalidInput(str(exc), field=claim.kind) from exc
    if not value:
        raise InvalidInput(f"empty {claim.kind} identity", field=claim.kind)
    return IdentityClaim(claim.kind, value, claim.verification)


def key_from_label(label: str) -> str:
    """A stable key for an attribute from its label: 'Plan tier' -> 'plan_tier'."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:40]
    if key and not key[0].isalpha():
        key = f"a_{key}"[:40]
    return key


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            "a key starts with a letter and uses only lowercase letters, digits and _",
            field="key",
        )
    return key


def parse_options(kind: AttributeKind, raw: Sequence[str] | str) -> list[str]:
    """The options of a list attribute (one per line or comma separated), without repeats."""
    if kind != AttributeKind.choice:
        return []
    items = re.split(r"[\n,]", raw) if isinstance(raw, str) else list(raw)
    options: list[str] = []
    for item in items:
        option = item.replace("\x00", "").strip()
        if not option or option in options:
            continue
        if len(option) > OPTION_MAX:
            raise InvalidInput("an option has at most 60 characters", field="options")
        options.append(option)
    if not options:
        raise InvalidInput("a list attribute needs at least one option", field="options")
    if len(options) > OPTIONS_MAX:
        raise InvalidInput("a list attribute has at most 50 options", field="options")
    return options


def parse_value(kind: AttributeKind, options: Sequence[str], raw: object) -> AttributeValue | None:
    """A value checked against its attribute's type; None means 'not set'."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if kind == AttributeKind.number:
        return _number(raw)
    if kind == AttributeKind.date:
        return _date(raw)
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise InvalidInput("enter text")
    text = str(raw).strip()
    if kind == AttributeKind.choice:
        if text not in options:
            raise InvalidInput("choose one of the listed options")
        return text
    if len(text) > TEXT_MAX:
        raise InvalidInput("a text attribute holds at most 500 characters")
    return text.replace("\x00", "")  # PostgreSQL text cannot hold NUL


def _number(raw: object) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidInput("enter a number, such as 42 or 3.5")
    try:
        value = Decimal(str(raw).strip().replace(" ", ""))
    except InvalidOperation:
        raise InvalidInput("enter a number, such as 42 or 3.5") from None
    if not value.is_finite() or abs(value) > Decimal("1e15"):
        raise InvalidInput("enter a number, such as 42 or 3.5")
    if value == value.to_integral_value():
        return int(value)
    result = float(value)
    if math.isinf(result):
        raise InvalidInput("enter a number, such as 42 or 3.5")
    return result


def _date(raw: object) -> str:
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip()).isoformat()
        except ValueError:
            pass
    raise InvalidInput("enter a date as YYYY-MM-DD")


def check_label(name: str, color: str | None) -> tuple[str, str | None]:
    clean = " ".join(name.replace("\x00", "").split())
    if not clean:
        raise InvalidInput("a label needs a name", field="name")
    if len(clean) > LABEL_MAX:
        raise InvalidInput("a label name has at most 60 characters", field="name")
    colour = (color or "").strip().lower() or None
    if colour is not None and colour not in LABEL_COLORS:
        raise InvalidInput("choose a colour from the list", field="color")
    return clean, colour


def check_custom_event(name: str, properties: Any) -> tuple[str, dict[str, Any]]:
    """The event's name and properties, or a clear error (bad input records nothing)."""
    clean = name.strip()
    if not EVENT_NAME_PATTERN.match(clean):
        raise InvalidInput(
            "an event name has 1 to 64 letters, digits, spaces or . _ : -", field="name"
        )
    if not isinstance(properties, dict):
        raise InvalidInput("properties must be a JSON object", field="properties")
    if len(properties) > EVENT_PROPERTIES_MAX_KEYS:
        raise InvalidInput("an event has at most 50 properties", field="properties")
    if _depth(properties) > EVENT_PROPERTIES_MAX_DEPTH:
        raise InvalidInput("properties nest at most 5 levels deep", field="properties")
    try:
        dumped = json.dumps(properties, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput("properties must be plain JSON values", field="properties") from None
    if "\\u0000" in dumped:  # PostgreSQL's JSON cannot hold NUL characters
        raise InvalidInput("properties must be plain JSON values", field="properties")
    size = len(dumped.encode())
    if size > EVENT_PROPERTIES_MAX_BYTES:
        raise InvalidInput("an event's properties take at most 8 KB", field="properties")
    return clean, properties


def _depth(value: object, level: int = 1) -> int:
    """How deeply objects and lists nest (stops counting past the limit)."""
    if level > EVENT_PROPERTIES_MAX_DEPTH:
        return level
    children: list[object] = []
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, list):
        children = list(value)
    nested = [_depth(child, level + 1) for child in children if isinstance(child, dict | list)]
    return max([level, *nested])
