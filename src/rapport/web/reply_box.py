"""The reply box: which channels can answer this conversation, and the template check on send.

The domain judges each route with the channel's policy (`reply_routes`); this edge adds what
needs the provider's API: a route that may only send templates (WhatsApp after 24 hours) is
offered only when the provider lists approved templates, and a template chosen in the browser
is looked up again before it is queued (never trust the browser).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.channels.base import SendContext
from rapport.channels.registry import ADAPTERS, adapter_for, inbox_adapter
from rapport.channels.sms.policy import GSM7_BASIC, GSM7_EXTENSION
from rapport.domain.conversations.models import Conversation
from rapport.domain.conversations.queries import ReplyRoute, reply_routes
from rapport.domain.errors import InvalidInput
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import SendError
from rapport.lib.placeholders import fill, placeholders
from rapport.services import Services
from rapport.web.i18n import N_

POLICIES = {adapter.kind: adapter.policy for adapter in ADAPTERS}
TEMPLATES_TIMEOUT = 8.0  # seconds to wait for the provider's template list
# The GSM-7 alphabet for the browser's live segment count (the same table the server uses).
NO_TEMPLATE_LIST = N_("the message templates could not be listed")
NO_TEMPLATES = N_("the 24-hour window is closed and there is no approved template")
GSM7 = {"basic": "".join(sorted(GSM7_BASIC)), "extension": "".join(sorted(GSM7_EXTENSION))}


@dataclass(frozen=True)
class ReplyOption:
    """One entry of the channel list: a route, whether it can be used now, and why not."""

    route: ReplyRoute
    allowed: bool
    reason: str | None
    templates: list[dict[str, Any]] = field(default_factory=list)
    selected: bool = False

    @property
    def key(self) -> str:
        return self.route.key

    @property
    def max_length(self) -> int | None:
        return POLICIES[self.route.inbox.channel].max_length

    @property
    def needs_template(self) -> bool:
        return self.allowed and self.route.check.needs_template


async def reply_options(
    services: Services, session: AsyncSession, conversation: Conversation
) -> list[ReplyOption]:
    """Every route, judged; template-only routes carry their templates or say none exist."""
    routes = await reply_routes(session, conversation=conversation, policies=POLICIES)
    listed: dict[int, list[dict[str, Any]] | None] = {}
    options = []
    for route in routes:
        if not (route.check.allowed and route.check.needs_template):
            options.append(ReplyOption(route, route.check.allowed, route.check.reason))
            continue
        if route.inbox.id not in listed:
            listed[route.inbox.id] = await _templates_or_none(services, route.inbox)
        templates = listed[route.inbox.id]
        if templates is None:
            options.append(ReplyOption(route, False, NO_TEMPLATE_LIST))
        elif not templates:
            options.append(ReplyOption(route, False, NO_TEMPLATES))
        else:
            options.append(ReplyOption(route, True, route.check.reason, _with_fields(templates)))
    return _select_default(options)


def _select_default(options: list[ReplyOption]) -> list[ReplyOption]:
    usable = [o for o in options if o.allowed]
    chosen = next((o for o in usable if o.route.is_default), usable[0] if usable else None)
    result = [
        ReplyOption(o.route, o.allowed, o.reason, o.templates, selected=o is chosen)
        for o in options
    ]
    result.sort(key=lambda o: (not o.selected, not o.allowed, o.route.inbox.name))
    return result


def _with_fields(templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**t, "fields": placeholders(str(t.get("body") or ""))} for t in templates]


async def list_templates(services: Services, inbox: Inbox) -> list[dict[str, Any]]:
    """The inbox's approved templates from the provider (raises SendError when unreachable)."""
    adapter = adapter_for(inbox.channel)
    if not adapter.policy.templates:
        return []
    try:
        config = inbox_adapter(inbox, services.box)[1]
    except ValidationError as exc:
        raise SendError("the inbox's settings are incomplete", retryable=False) from exc
    ctx = SendContext(
        http=services.http, read_file=services.files.read, public_url=services.settings.public_url
    )
    try:
        async with asyncio.timeout(TEMPLATES_TIMEOUT):
            return await adapter.list_templates(config, ctx)
    except (TimeoutError, httpx.HTTPError) as exc:
        raise SendError(str(exc) or "no answer", retryable=True) from exc


async def _templates_or_none(services: Services, inbox: Inbox) -> list[dict[str, Any]] | None:
    try:
        return await list_templates(services, inbox)
    except SendError:
        return None


@dataclass(frozen=True)
class ChosenTemplate:
    payload: dict[str, object]  # what the adapter sends: name, language, variables
    text: str  # the filled body, shown in the timeline


async def checked_template(
    services: Services, inbox: Inbox, *, name: str, language: str, values: list[str]
) -> ChosenTemplate:
    """The template the agent chose, found again in the provider's list, variables filled."""
    try:
        templates = await list_templates(services, inbox)
    except SendError as exc:
        raise InvalidInput("the message templates could not be listed", field="template") from exc
    found = next(
        (t for t in templates if t.get("name") == name and t.get("language") == language), None
    )
    if found is None:
        raise InvalidInput("choose one of this inbox's approved templates", field="template")
    body = str(found.get("body") or "")
    fields = placeholders(body)
    cleaned = [v.strip() for v in values]
    if len(cleaned) != len(fields) or not all(cleaned):
        raise InvalidInput("fill in every variable of the template", field="template")
    variables: list[str] | dict[str, str] = (
        cleaned if all(f.isdigit() for f in fields) else dict(zip(fields, cleaned, strict=True))
    )
    return ChosenTemplate(
        payload={"name": name, "language": language, "variables": variables},
        text=fill(body, cleaned),
    )


def parse_route(route: str | None, inbox_id: int | None) -> tuple[int, int | None]:
    """`inbox id:identity id` from the reply box (or a bare inbox id) -> the two ids."""
    if route:
        inbox_part, _, identity_part = route.partition(":")
        if not inbox_part.isdigit() or (identity_part and not identity_part.isdigit()):
            raise InvalidInput("choose a channel to reply on", field="route")
        return int(inbox_part), int(identity_part) if identity_part else None
    if inbox_id is None:
        raise InvalidInput("choose a channel to reply on", field="route")
    return inbox_id, None
