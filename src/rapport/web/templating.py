"""Jinja2 pages: one environment, translations and helpers put in every render."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse

from rapport.lib.clock import utcnow
from rapport.lib.identities import format_phone_for_display
from rapport.lib.text import sanitise_html
from rapport.web.csrf import csrf_token
from rapport.web.i18n import LOCALES, locale_name, negotiate, translations

TEMPLATE_DIR = Path(__file__).parent / "templates"

CHANNEL_LABELS = {
    "webchat": "Chat",
    "email": "Email",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "messenger": "Messenger",
    "instagram": "Instagram",
    "telegram": "Telegram",
    "voice": "Voice",
    "video": "Video",
    "api": "API",
}

templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
env = templates.env
env.autoescape = True
env.trim_blocks = True
env.lstrip_blocks = True


def request_locale(request: Request) -> str:
    agent = getattr(request.state, "agent", None)
    if agent is not None and agent.user.locale in LOCALES:
        return str(agent.user.locale)
    return negotiate(request.headers.get("accept-language"))


@pass_context
def _timeago(context: Any, value: datetime | None) -> str:
    if value is None:
        return ""
    gettext = context["_"]
    seconds = max(0, int((utcnow() - value).total_seconds()))
    if seconds < 60:
        return str(gettext("now"))
    if seconds < 3600:
        return str(gettext("%(n)sm") % {"n": seconds // 60})
    if seconds < 86400:
        return str(gettext("%(n)sh") % {"n": seconds // 3600})
    return str(gettext("%(n)sd") % {"n": seconds // 86400})


def _linebreaks(value: str) -> Markup:
    """Escape first, then turn newlines into <br>: customer text never becomes markup."""
    return Markup("<br>").join(escape(value).split("\n"))


_CID_SRC = re.compile(r'src="cid:([^"]*)"')


def _email_html(html: str | None, attachments: Sequence[Any] = ()) -> Markup:
    """Email HTML (sanitised on the way in, and again here), inline images pointing at files.

    `cid:` sources (RFC 2392) become the stored attachment's URL; unknown ones are dropped.
    """
    by_cid = {a.content_id: a.id for a in attachments if getattr(a, "content_id", None)}

    def point(match: re.Match[str]) -> str:
        found = by_cid.get(unquote(match.group(1)).strip("<>"))
        return f'src="/attachments/{found}"' if found else 'src=""'

    clean = sanitise_html(html or "", extra_url_schemes=frozenset({"cid"}))
    return Markup(_CID_SRC.sub(point, clean))  # noqa: S704 - nh3-sanitised just above


def _identity_value(kind: str, value: str) -> str:
    return format_phone_for_display(value) if kind == "phone" else value


env.filters["timeago"] = _timeago
env.filters["linebreaks"] = _linebreaks
env.filters["channel_label"] = lambda kind: CHANNEL_LABELS.get(kind or "", kind or "")
env.filters["identity_value"] = _identity_value
env.filters["email_html"] = _email_html
env.globals["CHANNEL_LABELS"] = CHANNEL_LABELS
env.globals["LOCALES"] = LOCALES
env.globals["locale_name"] = locale_name


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    locale = request_locale(request)
    catalog = translations(locale)
    full: dict[str, Any] = {
        "agent": getattr(request.state, "agent", None),
        "csrf_token": csrf_token(request),
        "locale": locale,
        "_": catalog.gettext,
        "gettext": catalog.gettext,
        "ngettext": catalog.ngettext,
        "is_htmx": request.headers.get("hx-request") == "true",
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code, headers=headers)


def gettext_for(request: Request) -> Any:
    return translations(request_locale(request)).gettext
