"""Message template placeholders (`{{1}}`, `{{name}}`): which there are, and the text filled in.

WhatsApp templates number their variables (`{{1}}`, `{{2}}`) or name them (`{{first_name}}`);
the reply box asks for one value per distinct placeholder and shows the filled text. The
browser's preview (static/app.js) follows the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def placeholders(body: str) -> list[str]:
    """Distinct placeholder names: numbered ones in number order, named ones as they appear."""
    names = list(dict.fromkeys(PLACEHOLDER.findall(body)))
    if names and all(n.isdigit() for n in names):
        names.sort(key=int)
    return names


def fill(body: str, values: Sequence[str]) -> str:
    """The body with each placeholder replaced by its value (in `placeholders` order)."""
    mapping = dict(zip(placeholders(body), values, strict=False))
    return PLACEHOLDER.sub(lambda m: mapping.get(m.group(1), m.group(0)), body)
